"""The whole store and its record: export, import (the document `promstack export` writes), the
audit log and its verification; what `promstack export`, `import backup.json` and `audit` do
over a team server."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from . import Caller, needs, ref
from .prompts import Body

router = APIRouter(tags=["store"])


class ImportStore(Body):
    document: dict[str, Any] = Field(description="A whole-store document as GET /export returns it "
                                     "(\"format\": \"promstack/1\").")
    force: bool = Field(default=False, description="Take the labels of gated environments as they are; "
                        "needs reason and the deployer role, audited.")
    reason: str | None = Field(default=None, max_length=2000, description="Required with force.")


class Imported(BaseModel):
    prompts: int
    versions: int
    labels: int


class AuditReport(BaseModel):
    ok: bool
    message: str
    count: int = Field(description="Rows in the chain as it stands.")
    head: str = Field(description="COUNT:HASH: keep it where the store's writers cannot reach, pass it back as expect.")
    problems: list[str]


@router.get("/export")
def export_store(caller: Caller = needs("export_store")) -> dict[str, Any]:
    """The whole store as one JSON document (prompts, versions, branches, labels and their
    history), as `promstack export` writes it; POST /import takes it back."""
    with caller.client() as client:
        return client.export()


@router.post("/import", response_model=Imported)
def import_store(body: ImportStore, caller: Caller = needs("import_store")) -> Any:
    """Add every prompt of an exported document, all or nothing. A label that names an
    environment needs the deployer role; a gated environment's is refused unless force."""
    from promstack.deploy import label_role

    with caller.client() as client:
        for prompt in body.document.get("prompts") or []:
            for label in (prompt.get("labels") or []) if isinstance(prompt, dict) else []:
                if isinstance(label, dict) and isinstance(label.get("name"), str):
                    caller.require(label_role(client, label["name"]))
        return client.import_(body.document, force=body.force, reason=body.reason)


@router.get("/audit")
def audit_log(prompt: str | None = None, limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
              caller: Caller = needs("audit_log")) -> list[dict[str, Any]]:
    """The audit log, newest first (`prompt`: only rows about it), as `promstack audit` lists it."""
    with caller.client() as client:
        return client.audit_log(None if prompt is None else ref(prompt), limit=limit)


@router.get("/audit/verify", response_model=AuditReport)
def verify_audit(expect: Annotated[str | None, Query(max_length=200)] = None,
                 caller: Caller = needs("audit_log")) -> Any:
    """Check the keyed hash chain, every version's content and the label history against it
    (with the server's audit key, which never leaves it); `expect` a head printed earlier."""
    with caller.client() as client:
        client.flush_calls()  # the calls logged so far are in the chain checked
        report = client.audit_report(expect=expect)
    return AuditReport(ok=report.ok, message=report.message, count=report.count, head=report.head,
                       problems=list(report.problems))
