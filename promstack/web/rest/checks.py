"""The quick checks of saves (promstack.evals.check): a prompt's, by version. History and version
reads carry each version's check too; this is what the remote client's `version_checks` reads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from promstack import schemas as s
from store.errors import InvalidInput

from . import Caller, needs, ref

router = APIRouter(tags=["prompts"])
MAX_VERSIONS = 500


class Checks(BaseModel):
    prompt_id: int
    checks: dict[int, s.VersionCheck] = Field(description="version -> its check; a version saved before checks has none.")


@router.get("/prompts/{prompt:prompt}/-/checks", response_model=Checks)
def get_checks(prompt: str, versions: str | None = None, caller: Caller = needs("get_checks")) -> Any:
    """The quick checks of a prompt's versions: `versions=3,4,5`, or every checked version."""
    wanted = None
    if versions:
        try:
            wanted = [int(v) for v in versions.split(",") if v.strip()]
        except ValueError:
            raise InvalidInput(f"versions is a comma-separated list of version numbers such as 3,4,5; got {versions!r}") from None
        if len(wanted) > MAX_VERSIONS:
            raise InvalidInput(f"ask for at most {MAX_VERSIONS} versions at a time")
    with caller.client() as client:
        prompt_id = client.get_prompt(ref(prompt)).prompt_id
        found = client.version_checks(prompt_id, wanted)
    return Checks(prompt_id=prompt_id, checks={v: s.check_of(found, v) for v in found})
