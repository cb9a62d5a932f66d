"""A small, realistic demo catalog for `make run` (`pim demo load`): a home and apparel shop with
a schema, a category tree, 300 products (60 of them parents with 4 variations each), a default
view and a segment, so that a newcomer's first request returns something worth looking at.

Generated deterministically (a seeded `random.Random`) and written through the service functions
the API uses (schema PUT, category and view creation, the bulk upsert by SKU, segment creation),
idempotently: loading it again finds the categories, view and segment by name and upserts the
same products by SKU, so nothing is duplicated.
"""

import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog
from app.catalog.fields import FieldDef
from app.catalog.schemas import CategoryIn, SchemaIn, ViewIn
from app.catalog.values import FieldType
from app.models import Category, Segment, View
from app.products import service as products
from app.segments import service as segments
from app.segments.schemas import SegmentIn

SEED = 20261207
PARENTS_PER_LEAF = 5  # 12 leaves: 60 parents, each with 4 variations: 300 products
COLORS = ["black", "white", "red", "blue", "green", "grey", "oak", "brass"]
SIZES = ["XS", "S", "M", "L", "XL"]
BRANDS = ["Nordlys", "Atelier Rue", "Kasa", "Hollow Pine", "Marlowe & Co", "Tessera"]
MATERIALS = ["cotton", "linen", "wool", "oak", "walnut", "steel", "brass", "ceramic", "glass"]

# top-level category -> its subcategories -> the noun of their products
TREE: dict[str, dict[str, str]] = {
    "Lighting": {
        "Table lamps": "Table Lamp",
        "Floor lamps": "Floor Lamp",
        "Pendants": "Pendant Light",
    },
    "Furniture": {"Chairs": "Chair", "Tables": "Dining Table", "Shelving": "Shelf"},
    "Apparel": {"Shirts": "Shirt", "Knitwear": "Sweater", "Outerwear": "Jacket"},
    "Kitchen": {"Cookware": "Pan", "Tableware": "Plate Set", "Storage": "Storage Jar"},
}
# top-level category -> the attribute its products' variations differ in
VARIATION_AXIS = {"Lighting": "color", "Furniture": "color", "Apparel": "size", "Kitchen": "color"}
ADJECTIVES = ["Classic", "Nordic", "Slim", "Rustic", "Soft", "Studio", "Arc", "Harbor", "Linea"]

SCHEMA = [
    FieldDef(name="brand", type=FieldType.string, label="Brand", searchable=True),
    FieldDef(name="price", type=FieldType.number, label="Price", group="commerce"),
    FieldDef(name="color", type=FieldType.enum, label="Colour", options=COLORS),
    FieldDef(name="size", type=FieldType.enum, label="Size", options=SIZES),
    FieldDef(name="material", type=FieldType.string, label="Material"),
    FieldDef(name="in_stock", type=FieldType.boolean, label="In stock", group="commerce"),
    FieldDef(name="stock", type=FieldType.integer, label="Units in stock", group="commerce"),
    FieldDef(name="weight_kg", type=FieldType.number, label="Weight (kg)", group="shipping"),
    FieldDef(name="tags", type=FieldType.array, label="Tags"),
    FieldDef(name="description", type=FieldType.text, label="Description", searchable=True),
    FieldDef(name="launched_on", type=FieldType.date, label="Launched on"),
]

VIEW = ViewIn(
    name="Web shop",
    attributes=["brand", "price", "color", "size", "in_stock", "description"],
    is_default=True,
)
SEGMENT_NAME = "Lighting in stock under 150"


def demo_segment(lighting_id: int) -> SegmentIn:
    return SegmentIn(
        name=SEGMENT_NAME,
        description="Lamps a campaign can promote now",
        definition={
            "match": "all",
            "conditions": [
                {"field": "category", "op": "in_category", "value": lighting_id},
                {"field": "in_stock", "op": "eq", "value": True},
                {"field": "price", "op": "lt", "value": 150},
            ],
        },
    )


@dataclass(frozen=True)
class DemoCatalog:
    fields: int
    categories: int
    products: int
    variations: int
    view_id: int
    segment_id: int


def demo_products(leaf_ids: dict[str, int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The parents and their variations, as bulk items; the same on every call."""
    rng = random.Random(SEED)
    parents: list[dict[str, Any]] = []
    variations: list[dict[str, Any]] = []
    for top, leaves in TREE.items():
        axis = VARIATION_AXIS[top]
        for leaf, noun in leaves.items():
            for n in range(PARENTS_PER_LEAF):
                brand = rng.choice(BRANDS)
                name = f"{rng.choice(ADJECTIVES)} {noun}"
                sku = f"DEMO-{top[:3].upper()}-{leaf[:3].upper()}-{n + 1:02d}"
                price = round(rng.uniform(12, 480), 2)
                material = rng.choice(MATERIALS)
                common = {
                    "brand": brand,
                    "material": material,
                    "weight_kg": round(rng.uniform(0.2, 25), 1),
                    "tags": rng.sample(["new", "bestseller", "eco", "sale", "limited"], 2),
                    "launched_on": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                }
                parents.append(
                    {
                        "sku": sku,
                        "name": f"{brand} {name}",
                        "categories": [leaf_ids[leaf]],
                        "variation_attributes": [axis],
                        "price": price,
                        "description": f"The {name.lower()} by {brand}, in {material}.",
                        **common,
                    }
                )
                values = rng.sample(COLORS if axis == "color" else SIZES, 4)
                for value in values:
                    stock = rng.choice([0, 0, 3, 12, 40, 150])
                    variations.append(
                        {
                            "sku": f"{sku}-{value.upper()}",
                            "name": f"{brand} {name}, {value}",
                            "categories": [leaf_ids[leaf]],
                            "variation_of": sku,
                            "variation_attributes": [axis],
                            axis: value,
                            "price": round(price * rng.choice([1, 1, 1.1, 0.9]), 2),
                            "stock": stock,
                            "in_stock": stock > 0,
                            "status": "active" if stock or rng.random() < 0.7 else "inactive",
                            **common,
                        }
                    )
    return parents, variations


async def _category(session: AsyncSession, name: str, parent_id: int | None, position: int) -> int:
    existing = await session.scalar(
        select(Category.id).where(
            Category.name == name,
            Category.parent_id.is_(None) if parent_id is None else Category.parent_id == parent_id,
        )
    )
    if existing is not None:
        return existing
    category = await catalog.create_category(
        session, CategoryIn(name=name, parent_id=parent_id, position=position)
    )
    return category.id


async def load_demo_catalog(session: AsyncSession, *, max_data_bytes: int) -> DemoCatalog:
    """Write the demo catalog into the session's tenant (idempotent; the caller commits)."""
    await catalog.put_schema(session, SchemaIn(fields=SCHEMA))
    leaf_ids: dict[str, int] = {}
    top_ids: dict[str, int] = {}
    count = 0
    for top_position, (top, leaves) in enumerate(TREE.items()):
        top_id = top_ids[top] = await _category(session, top, None, top_position)
        count += 1
        for position, leaf in enumerate(leaves):
            leaf_ids[leaf] = await _category(session, leaf, top_id, position)
            count += 1
    parents, variations = demo_products(leaf_ids)
    for batch in (parents, variations):  # parents first: variations name them
        result = await products.bulk_upsert(session, batch, max_data_bytes=max_data_bytes)
        if result.failed:
            raise RuntimeError(f"demo products refused: {result.errors[:3]}")
    view_id = await session.scalar(select(View.id).where(View.name == VIEW.name))
    if view_id is None:
        view_id = (await catalog.create_view(session, VIEW)).id
    segment_id = await session.scalar(select(Segment.id).where(Segment.name == SEGMENT_NAME))
    if segment_id is None:
        body = demo_segment(top_ids["Lighting"])
        segment_id = (await segments.create_segment(session, body=body)).id
    return DemoCatalog(
        fields=len(SCHEMA),
        categories=count,
        products=len(parents) + len(variations),
        variations=len(variations),
        view_id=view_id,
        segment_id=segment_id,
    )
