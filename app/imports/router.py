from typing import Annotated

from fastapi import Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from app.deps import Arq, EditorSession, SettingsDep, ViewerSession
from app.errors import AUTH_ERRORS, error_responses
from app.imports import service
from app.imports.schemas import ConfirmIn, ImportJobOut, ImportJobPage
from app.imports.upload import MultipartFile
from app.pagination import DEFAULT_LIMIT, Cursor, Limit
from app.routing import StreamingRoute, api_router

# uploads stream their body and the errors CSV its answer: they take no tenant turn
router = api_router(
    prefix="/api/pim/import", tags=["imports"], responses=AUTH_ERRORS, route_class=StreamingRoute
)

JobId = Annotated[str, Path(max_length=64, description="import job id (a UUID)")]
Sheet = Annotated[
    str | None,
    Query(
        max_length=200,
        description="an .xlsx upload's sheet to import: its name, or its 0-based index; default the first",
    ),
]

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "the CSV file: any of , ; tab | as delimiter; UTF-8 (with or without BOM), "
                            "UTF-16, Windows-1252 or Latin-1; or an .xlsx workbook (recognised by its content)",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/csv/",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportJobOut,
    responses={
        **error_responses(400, 409, 413, 415),
        422: {
            "description": "No `file` part in a multipart/form-data body",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
            },
        },
    },
    openapi_extra=UPLOAD_BODY,
)
async def upload_import_csv(
    request: Request,
    response: Response,
    session: EditorSession,
    settings: SettingsDep,
    sheet: Sheet = None,
):
    """Upload a CSV file or an .xlsx workbook (multipart field `file`). The file is stored and the answer
    is a job in status `mapping` with the detected encoding and delimiter, a type and a suggested field per
    column, and the suggested schema. Review it, then confirm with `POST /api/pim/import/{job_id}/confirm/`.
    The `Server-Timing` header tells how long the upload and the suggestion took.

    **XLSX.** A workbook is recognised by its content (a ZIP archive holding `xl/workbook.xml`),
    whatever its name. Its first sheet is imported, or the one named by `sheet` (a name, or a
    0-based index). The header is the first non-empty row. Cells keep their own types: a number
    cell is that number under any conventions (`3.7` is 3.7), a date-formatted cell is a date
    (`2024-12-04`; with a time: a datetime without offset), a boolean cell `true`/`false`; a text
    cell stays text (`02134` keeps its zero), and so does a number in a zero-padded (`00000`) or
    text (`@`) format, as the sheet shows it. For such a job `encoding` and `delimiter` are null and
    row numbers (in `errors`) are the sheet's. Refused with a message: an old `.xls` or an
    encrypted (password-protected) workbook and `.xlsb` (`415`); a damaged or truncated
    workbook, a ZIP archive that is no workbook, an unknown `sheet`, and parts that unpack to
    more than their bounds (zip bombs) (`400`).

    **Shopify.** In a Shopify product export, variant rows repeat the `Handle` and leave the
    product-level columns (Title, Body (HTML), Vendor, Type, Tags, Published, Status, SEO…,
    OptionN Name) empty: they inherit them from the handle's first row. A column `Variation Of`
    is added with the SKU of the handle's first variant (empty on that row), suggested for
    `variation_of`; `Status` (active, draft, archived) is the status, draft and archived
    `inactive` (`suggested_value_mapping`). A column `Images` is added with the product's image
    URLs: rows holding only extra images add theirs to the handle's first variant.

    **WooCommerce.** A `Parent` cell `id:101` is the SKU of the file's row whose `ID` is 101;
    a reference no earlier row answers rejects its row. `Published` (1, 0 private, -1 draft) is the
    status, 0 and -1 `inactive` (`suggested_value_mapping`); another value rejects its row.

    A tenant keeps at most `PIM_IMPORT_STORAGE_QUOTA_BYTES` (5 GiB by default) of uploads stored at
    once (jobs uploading, in `mapping` or `importing`): an upload that would exceed it is a `413`;
    delete unused jobs with `DELETE /api/pim/import/{job_id}/`. A job deleted while its file is
    still being sent ends the upload with a `409`."""
    upload = MultipartFile(request)
    job, timings = await service.create_import(
        session,
        sessionmaker=request.app.state.sessionmaker,
        pieces=upload.pieces(),
        filename=lambda: upload.filename,
        settings=settings,
        sheet=sheet,
    )
    response.headers["Server-Timing"] = ", ".join(
        f"{name};dur={ms:.1f}" for name, ms in timings.items()
    )
    return service.job_out(job)


@router.get("/", response_model=ImportJobPage, responses=error_responses(400))
async def list_import_jobs(
    session: ViewerSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
):
    """The tenant's import jobs, newest first, a page at a time: state and counters of each (the
    suggestion and rejected rows: `GET /api/pim/import/{job_id}/`). `next_cursor` (opaque) fetches
    the next page and is `null` on the last one; a page starts after the last job of the previous
    one (keyset), so jobs created meanwhile do not shift the pages."""
    return await service.list_jobs(session, cursor=cursor, limit=limit)


@router.get("/{job_id}/", response_model=ImportJobOut, responses=error_responses(404))
async def get_import_job(job_id: JobId, session: ViewerSession):
    """The job with its suggestion, confirmed mapping, progress counters and the first 100 rejected rows."""
    return service.job_out(await service.get_job(session, job_id))


@router.post(
    "/{job_id}/confirm/",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportJobOut,
    responses={
        **error_responses(400, 404, 503),
        200: {"model": ImportJobOut, "description": "the dry run's result (`dry_run`)"},
    },
)
async def confirm_import_job(
    job_id: JobId, body: ConfirmIn, response: Response, session: EditorSession, arq: Arq
):
    """Confirm the mapping (and the schema to save) and start the import (202). Rows are upserted by SKU;
    a bad row is reported and skipped. Follow progress with `GET /api/pim/import/{job_id}/`.

    Every cell is read under the job's `conventions` (override any of them with `conventions`, or
    `encoding` / `delimiter`, which re-read the stored file), after `value_mapping`, by the same value
    rules as POST/PATCH/bulk: a cell that does not read under them rejects its row, never reinterpreted.

    With `"dry_run": true` nothing is written (200): the answer's `dry_run` tells the rows the import
    would create, update and reject, the first 100 errors and the converted first 20 rows; the job
    stays in `mapping`, so the mapping, schema, conventions or value mapping can be changed and tried again."""
    job = await service.confirm_import(session, arq=arq, job_id=job_id, body=body)
    if body.dry_run:
        response.status_code = status.HTTP_200_OK
    return service.job_out(job)


@router.delete(
    "/{job_id}/", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 409)
)
async def delete_import_job(job_id: JobId, session: EditorSession) -> Response:
    """Delete a job with its stored file and rejected rows (its products stay). A job in status
    `importing` is a `409`: wait until it is `done` or `failed`."""
    await service.delete_job(session, job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{job_id}/errors/",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "the rejected rows as CSV",
        },
        **error_responses(404),
    },
)
async def download_import_errors(job_id: JobId, request: Request, session: ViewerSession):
    """Every rejected row as CSV (UTF-8): the row's cells under the file's headers, then `row`
    (record number in the file, the header is row 1) and `error`."""
    job = await service.get_job(session, job_id)
    headers = list(job.parse_options.get("headers", []))
    return StreamingResponse(
        service.error_csv(request.app.state.sessionmaker, job_id=job.id, headers=headers),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job.id}-errors.csv"'},
    )
