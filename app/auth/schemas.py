from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.auth.service import Role
from app.bodies import ClosedModel
from app.pagination import NextCursor


class ApiKeyCreate(ClosedModel):
    """A key to create: a name to recognise it by and its role."""

    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.viewer


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime


class ApiKeyPage(BaseModel):
    results: list[ApiKeyOut]
    next_cursor: NextCursor


class ApiKeyCreated(ApiKeyOut):
    api_key: str = Field(description="The secret key; shown only in this response")
