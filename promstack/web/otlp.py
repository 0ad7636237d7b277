"""`POST /v1/traces`: OTLP/HTTP trace exports into the call log (promstack.monitoring.otlp_in).

The face reads the body (never more than the engine's limit: 413 past it), checks the caller
may report calls (a `runner` token or better), and answers as OTLP/HTTP says: 200 with an
ExportTraceServiceResponse (its partial_success names rejected spans), 400 with a google.rpc.Status
for a body that is not an export, 413 and 415 for a body too large or of another type.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from promstack import access, config
from promstack.monitoring import otlp_in
from promstack.pool import ClientPool
from store.errors import InvalidInput

from .rest import principal_of


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > otlp_in.MAX_BODY_BYTES:
        raise otlp_in.TooLarge(f"the body is over {otlp_in.MAX_BODY_BYTES:,} bytes; send smaller batches")
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > otlp_in.MAX_BODY_BYTES:
            raise otlp_in.TooLarge(f"the body is over {otlp_in.MAX_BODY_BYTES:,} bytes; send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


def traces_route(pool: ClientPool) -> Route:
    async def traces(request: Request) -> Response:
        principal = principal_of(request)
        try:
            access.require(principal, "report_calls")
        except access.Forbidden as exc:
            return PlainTextResponse(f"{exc}\n", 403)
        actor = None if principal == access.LOCAL else principal.name
        kind = otlp_in.JSON if "json" in request.headers.get("content-type", "") else otlp_in.PROTOBUF
        try:
            body = await _body(request)

            def work() -> bytes:
                with pool.client(actor) as client:
                    _report, answer = otlp_in.receive(
                        client.store.db, body, request.headers.get("content-type"),
                        request.headers.get("content-encoding"), actor=client.actor,
                        config=config.of_client(client))
                    return answer

            answer = await run_in_threadpool(work)
        except otlp_in.TooLarge as exc:
            return PlainTextResponse(f"{exc}\n", 413, headers={"Connection": "close"})
        except otlp_in.Unsupported as exc:
            return PlainTextResponse(f"{exc}\n", 415)
        except InvalidInput as exc:
            return Response(otlp_in.error_status(str(exc), kind), 400, media_type=kind)
        return Response(answer, 200, media_type=kind)

    return Route("/v1/traces", traces, methods=["POST"])
