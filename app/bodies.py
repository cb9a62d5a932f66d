"""The base of the request bodies (and of what they nest): a member the model does not declare is a
422 rather than silently dropped, so that a misspelt `page_sise` or `fileds` is noticed."""

from pydantic import BaseModel, ConfigDict


class ClosedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
