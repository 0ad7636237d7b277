"""The shapes a judge's answer must fit (promstack.evals.judge validates replies against them).

A module of their own so that pydantic and these models load when a judge answers, not with
every batch run (~40 ms of `promstack test`'s start-up)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CriterionScore(BaseModel):
    model_config = ConfigDict(extra="ignore")
    criterion: int | str | None = None
    score: int  # the scale is whole numbers: 4.5 does not fit the schema
    reason: str = Field(min_length=1)


class Judgement(BaseModel):
    # A "pass" or "verdict" field the judge adds is ignored: pass/fail is decided from the score.
    model_config = ConfigDict(extra="ignore")
    scores: list[CriterionScore]


class PairJudgement(BaseModel):
    model_config = ConfigDict(extra="ignore")
    winner: Literal["A", "B", "tie"]
    reason: str = ""
