// A client of the TypeScript SDK that @hey-api/openapi-ts generates into ./client (by
// tests/hardening/test_sdk.py), compiled with `tsc --strict`: the typed models of every flow.
import { createClient } from './client/client';
import {
  bulkUpsertProducts,
  computeSegment,
  confirmImportJob,
  createCategory,
  createProduct,
  createSegment,
  getSegment,
  listProducts,
  replaceProductSchema,
  searchProducts,
  updateProduct,
  updateSegment,
  uploadImportCsv,
} from './client/sdk.gen';
import type { BulkItem, Group, ProductOut, SegmentOut } from './client/types.gen';

export async function tour(baseUrl: string, apiKey: string): Promise<ProductOut[]> {
  const client = createClient({ baseUrl, headers: { 'X-API-Key': apiKey } });
  await replaceProductSchema({
    client,
    throwOnError: true,
    body: {
      fields: [
        { name: 'brand', type: 'string', labels: { 'de-de': 'Marke' } },
        { name: 'price', type: 'number' },
      ],
    },
  });
  const shoes = (await createCategory({ client, throwOnError: true, body: { name: 'Shoes' } })).data;
  const created = await createProduct({
    client,
    throwOnError: true,
    body: { sku: 'NK-AM90', name: 'Air Max 90', categories: [shoes.id], data: { brand: 'Nike', price: 129.9 } },
  });
  const product: ProductOut = created.data;
  await updateProduct({ client, throwOnError: true, path: { product_id: product.id }, body: { data: { price: 119.9 } } });
  const items: BulkItem[] = [{ sku: 'AD-SAMBA', name: 'Samba', status: 'active', brand: 'Adidas', price: 99 }];
  const bulk = (await bulkUpsertProducts({ client, throwOnError: true, body: { products: items } })).data;
  const requestId: string | null = bulk.request_id;
  const definition: Group = {
    match: 'all',
    conditions: [
      { field: 'brand', op: 'eq', value: 'Nike' },
      { not: { field: 'price', op: 'between', value: [200, 300] } },
    ],
  };
  const segment: SegmentOut = (
    await createSegment({ client, throwOnError: true, body: { name: 'nike', definition } })
  ).data;
  const readBack = (await getSegment({ client, throwOnError: true, path: { segment_id: segment.id } })).data;
  // the definition read back is the type a request sends
  await updateSegment({
    client,
    throwOnError: true,
    path: { segment_id: segment.id },
    body: { definition: readBack.definition },
  });
  await computeSegment({ client, throwOnError: true, path: { segment_id: segment.id } });
  const job = (
    await uploadImportCsv({
      client,
      throwOnError: true,
      body: { file: new Blob(['sku,name\nPU-1,Suede\n'], { type: 'text/csv' }) },
    })
  ).data;
  await confirmImportJob({
    client,
    throwOnError: true,
    path: { job_id: job.job_id },
    body: { mapping: { sku: 'sku', name: 'name' }, dry_run: true },
  });
  const found = await searchProducts({ client, throwOnError: true, body: { where: definition, ordering: '-price' } });
  const page = await listProducts({
    client,
    throwOnError: true,
    query: { ordering: '-price', limit: 50, fieldFilters: { brand: 'Nike' } },
  });
  const next: string | null = page.data.next_cursor;
  console.log(requestId, next, found.data.count);
  return page.data.results;
}
