"""Upload and confirm errors, roles, tenant isolation, Redis down, remembered choices, the LLM stub."""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.imports.conftest import IMPORT, confirm, import_file, upload

FEED = b"sku,title,price\nX-1,One,1.50\nX-2,Two,2.50\n"


async def test_upload_requires_editor_and_a_file(client, tenant):
    r = await upload(client, tenant.viewer, FEED)
    assert r.status_code == 403
    r = await client.post(f"{IMPORT}/csv/", content=FEED)
    assert r.status_code == 401
    r = await client.post(f"{IMPORT}/csv/", headers=tenant.editor, files={"other": ("a.csv", FEED)})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "file"]
    r = await client.post(
        f"{IMPORT}/csv/", headers={**tenant.editor, "content-type": "text/csv"}, content=FEED
    )
    assert r.status_code == 422


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty"),
        (b"  \r\n\r\n", "empty"),
        (b"PK\x03\x04" + bytes(range(256)) * 40, "ZIP"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "PNG"),
        (bytes(range(256)) * 400, "binary"),
        (b"\x00\x01\x02\x03garbage" * 10000, "binary"),
    ],
)
async def test_empty_or_binary_upload_is_400(client, tenant, content, words):
    r = await upload(client, tenant.editor, content)
    assert r.status_code == 400, r.text
    assert words.lower() in r.json()["detail"].lower()


async def test_upload_over_the_limit_is_413(app_with, make_tenant):
    small = await app_with(max_upload_bytes=1000)
    tenant = await make_tenant()
    r = await upload(
        small, tenant.editor, FEED * 100
    )  # the whole body is over the limit: refused by its length
    assert r.status_code == 413, r.text

    async def chunked():  # no Content-Length: refused while streaming
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n\r\n'
        for _ in range(100):
            yield FEED
        yield b"\r\n--b--\r\n"

    r = await small.post(
        f"{IMPORT}/csv/",
        headers={**tenant.editor, "content-type": "multipart/form-data; boundary=b"},
        content=chunked(),
    )
    assert r.status_code == 413, r.text
    r = await upload(small, tenant.editor, FEED)  # under the limit: fine
    assert r.status_code == 201


async def test_utf16_upload_is_transcoded(client, tenant):
    r = await upload(client, tenant.editor, "sku\tname\tprix\nA-1\tÉlan\t1,5\n".encode("utf-16"))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["encoding"] == "utf-16" and job["delimiter"] == "\t"
    assert job["columns"][1]["samples"] == ["Élan"] and job["suggested_mapping"]["sku"] == "sku"


async def test_other_tenant_and_unknown_ids_are_404(client, tenant, other_tenant):
    r = await upload(client, tenant.editor, FEED)
    job = r.json()
    for path in (f"{IMPORT}/{job['job_id']}/", f"{IMPORT}/{job['job_id']}/errors/"):
        assert (await client.get(path, headers=other_tenant.admin)).status_code == 404
        assert (await client.get(path, headers=tenant.viewer)).status_code == 200
    r = await confirm(client, other_tenant.admin, job)
    assert r.status_code == 404
    for bad in ("not-a-uuid", str(uuid.uuid4()), "1"):
        assert (await client.get(f"{IMPORT}/{bad}/", headers=tenant.viewer)).status_code == 404
        r = await client.post(
            f"{IMPORT}/{bad}/confirm/", headers=tenant.editor, json={"mapping": {"sku": "sku"}}
        )
        assert r.status_code == 404
    r = await confirm(client, tenant.viewer, job)
    assert r.status_code == 403
    assert (
        await client.get(f"{IMPORT}/{job['job_id']}", headers=tenant.viewer)
    ).status_code == 200  # no slash


async def test_confirm_validation(client, tenant, worker):
    job = (await upload(client, tenant.editor, FEED)).json()
    assert job["suggested_mapping"] == {"sku": "sku", "title": "name", "price": "price"}
    schema = job["suggested_schema"]
    cases = [
        ({"title": "name", "price": "price"}, schema, "sku"),
        ({"sku": "sku", "price": "cost"}, schema, "cost"),
        ({"sku": "sku", "title": "price", "price": "price"}, schema, "more than once"),
        ({"sku": "sku", "nope": "name"}, schema, "nope"),
        ({"sku": "sku", "price": "price"}, [], "price"),
    ]
    for mapping, fields, words in cases:
        r = await confirm(client, tenant.editor, job, mapping=mapping, schema=fields)
        assert r.status_code == 400, (mapping, r.text)
        assert words in r.json()["detail"]
    r = await confirm(
        client,
        tenant.editor,
        job,
        mapping={"sku": "sku"},
        schema=[{"name": "id", "type": "string"}],
    )
    assert r.status_code == 422
    r = await client.get("/api/pim/schema/", headers=tenant.viewer)
    assert r.json()["fields"] == []  # nothing was saved by the refused confirmations

    r = await confirm(
        client, tenant.editor, job, mapping={"sku": "sku", "title": "name", "price": None}
    )
    assert r.status_code == 202, r.text
    assert r.json()["mapping"] == {"sku": "sku", "title": "name", "price": None}
    r = await confirm(client, tenant.editor, job)
    assert r.status_code == 400 and (
        "importing" in r.json()["detail"] or "done" in r.json()["detail"]
    )


async def test_redis_down_is_503_and_nothing_changes(app_with, make_tenant):
    down = await app_with(redis_url="redis://127.0.0.1:1/0")
    tenant = await make_tenant()
    job = (await upload(down, tenant.editor, FEED)).json()
    r = await confirm(down, tenant.editor, job)
    assert r.status_code == 503, r.text
    r = await down.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)
    assert r.json()["status"] == "mapping" and r.json()["mapping"] is None
    r = await down.get("/api/pim/schema/", headers=tenant.viewer)
    assert r.json()["fields"] == []


async def test_confirmed_choices_are_remembered(client, tenant, worker):
    feed = b"Code;Bezeichnung;Lieferant Nr;Notiz\nK-1;Eins;L-9;x\nK-2;Zwei;L-8;y\n"
    job = (await upload(client, tenant.editor, feed)).json()
    schema = [{"name": "supplier_ref", "type": "string"}]
    mapping = {"Code": "sku", "Bezeichnung": "name", "Lieferant Nr": "supplier_ref", "Notiz": None}
    r = await confirm(client, tenant.editor, job, mapping=mapping, schema=schema)
    assert r.status_code == 202, r.text
    # a later feed with the same headers (in another order and case) gets the same choices
    later = (
        await upload(
            client, tenant.editor, b"NOTIZ;code;LIEFERANT NR;bezeichnung\nz;K-3;L-7;Drei\n"
        )
    ).json()
    assert later["suggested_mapping"] == {
        "NOTIZ": None,
        "code": "sku",
        "LIEFERANT NR": "supplier_ref",
        "bezeichnung": "name",
    }
    assert {c["confidence"] for c in later["columns"]} == {1.0}


class _StubLLM(BaseHTTPRequestHandler):
    answer: dict = {}
    requests: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, self.headers.get("Authorization"), body))
        payload = json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": json.dumps(self.answer)}}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def llm_stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubLLM)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _StubLLM.requests = []
    yield server
    server.shutdown()
    server.server_close()


async def test_llm_answer_is_merged(app_with, make_tenant, llm_stub):
    _StubLLM.answer = {
        "columns": [
            {
                "header": "Nº",
                "field": "sku",
                "type": "string",
                "confidence": 0.9,
            },  # taken locally with certainty? no: see below
            {"header": "Qlty", "field": "quality_grade", "type": "enum", "confidence": 0.8},
            {"header": "Wgt", "field": "weight_kg", "type": "number", "confidence": 0.85},
            {
                "header": "Bogus",
                "field": "x",
                "type": "string",
                "confidence": 0.9,
            },  # unknown header: ignored
            {
                "header": "Libellé",
                "field": "id",
                "type": "string",
                "confidence": 0.9,
            },  # reserved: ignored
        ]
    }
    url = f"http://127.0.0.1:{llm_stub.server_address[1]}/v1"
    smart = await app_with(llm_base_url=url, llm_api_key="k-test", llm_model="stub")
    tenant = await make_tenant()
    r = await smart.put(
        "/api/pim/schema/",
        headers=tenant.editor,
        json={"fields": [{"name": "weight_kg", "type": "number"}]},
    )
    assert r.status_code == 200, r.text
    feed = "Nº;Libellé;Qlty;Wgt\n" + "".join(
        f"P{i:03d};Produit {i};{'AB'[i % 2]};{i},5\n" for i in range(30)
    )
    r = await upload(smart, tenant.editor, feed.encode())
    assert r.status_code == 201, r.text
    job = r.json()
    path, auth, body = _StubLLM.requests[0]
    assert path == "/v1/chat/completions" and auth == "Bearer k-test" and body["model"] == "stub"
    assert body["response_format"]["json_schema"]["strict"] is True
    m = job["suggested_mapping"]
    assert (
        m["Libellé"] == "name"
    )  # an exact synonym: the local engine is sure, the model is not asked to override
    # the model may pick the tenant's field `weight_kg`; a new field keeps its header's name (`qlty`), not the model's
    assert m["Nº"] == "sku" and m["Wgt"] == "weight_kg" and m["Qlty"] == "qlty"
    fields = {f["name"]: f for f in job["suggested_schema"]}
    assert fields["weight_kg"]["type"] == "number" and fields["qlty"]["type"] == "enum"
    assert (
        fields["qlty"]["options"] == ["A", "B"]
        and "x" not in fields
        and "quality_grade" not in fields
    )
    wgt = next(c for c in job["columns"] if c["header"] == "Wgt")
    assert "language model" in wgt["reason"]


async def test_llm_failure_keeps_local_suggestion(app_with, make_tenant):
    # nothing listens on this port: the local engine answers alone, in time
    smart = await app_with(llm_base_url="http://127.0.0.1:9/v1")
    tenant = await make_tenant()
    r = await upload(smart, tenant.editor, FEED)
    assert r.status_code == 201 and r.json()["suggested_mapping"]["sku"] == "sku"


def test_openapi_documents_the_import_routes():
    from app.main import create_app

    spec = create_app().openapi()
    upload_op = spec["paths"]["/api/pim/import/csv/"]["post"]
    assert upload_op["operationId"] == "upload_import_csv"
    assert (
        "file" in upload_op["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    )
    assert {"201", "400", "401", "403", "413"} <= set(upload_op["responses"])
    confirm_op = spec["paths"]["/api/pim/import/{job_id}/confirm/"]["post"]
    assert {"202", "400", "404", "503"} <= set(confirm_op["responses"])
    errors_op = spec["paths"]["/api/pim/import/{job_id}/errors/"]["get"]
    assert "text/csv" in errors_op["responses"]["200"]["content"]
    assert httpx  # keep the import (clients in other tests)


async def test_lines_inside_an_oversized_quoted_cell_never_become_products(client, tenant, worker):
    """A quoted cell over the 1 MiB record limit rejects its row, and the text inside it is not read
    as rows of their own (it used to create one product per line of the cell)."""
    inside = "".join(f"FAKE-{i},Injected product {i},junk\n" for i in range(40_000))  # ~1.5 MB
    feed = f'sku,name,desc\nH-1,Huge,"{inside}"\nH-2,Small,ok\n'.encode()
    _job, done = await import_file(client, tenant.editor, feed)
    assert (done["created"], done["failed"]) == (1, 1), done["errors"]
    assert done["errors"][0]["row"] == 2 and "quoted cell" in done["errors"][0]["detail"]
    r = await client.get("/api/pim/products/", params={"page_size": 10}, headers=tenant.viewer)
    assert [p["sku"] for p in r.json()["results"]] == ["H-2"]
