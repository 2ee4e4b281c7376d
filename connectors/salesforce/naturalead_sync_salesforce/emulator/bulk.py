"""Bulk API 2.0 query jobs: create, poll, read CSV results in chunks, abort, delete.

Choices where Salesforce documents nothing firm (all UNVERIFIED against a live org):

- The query runs when the job is created; results are that snapshot.
- A job answers ``UploadComplete`` on creation, ``InProgress`` to its first ``bulk_job_polls``
  status reads and ``JobComplete`` after that (a ``job_failed`` fault makes it ``Failed``).
- Refusals (bad operation, COUNT(), OFFSET, compound fields, bad ``maxRecords``/``locator``,
  aborting a finished job) are 400 ``INVALIDJOB``; SOQL errors keep their REST codes. Reading
  the results of an unfinished job is 412 ``JOB_NOT_COMPLETE``; of a job made with another API
  version, 409 ``INVALIDJOB``. DELETE answers 204 with no body.
- Results: CSV with a header row, minimal quoting, nulls as empty cells, datetimes
  ``2024-05-01T10:22:31.000Z``, numbers as Python writes them. Without ``maxRecords`` a chunk
  holds every remaining row. ``Sforce-Locator`` is the base64 of the next offset, ``null`` at
  the end.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from naturalead_sync.loopback import HTTPAnswer

from .errors import APIError, json_answer
from .faults import Fault
from .schema import FieldDef, Record, csv_text, wire_datetime
from .soql import parse
from .store import Org

__all__ = ["BulkJobs"]

_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^"}
_DELIMITERS["BACKQUOTE"] = "`"
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_DONE = ("JobComplete", "Failed", "Aborted")


@dataclass
class _Job:
    id: str
    operation: str
    sobject: str
    fields: tuple[FieldDef, ...]
    rows: list[Record]
    created_by: str
    created: datetime
    version: str
    delimiter: str
    line_ending: str
    state: str = "UploadComplete"
    polls: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        body = {
            "id": self.id,
            "operation": self.operation,
            "object": self.sobject,
            "createdById": self.created_by,
            "createdDate": wire_datetime(self.created),
            "systemModstamp": wire_datetime(self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "jobType": "V2Query",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
        }
        if self.state == "JobComplete":
            body.update(numberRecordsProcessed=len(self.rows), retries=0, totalProcessingTime=0)
        return {**body, **self.info}


def _invalid(message: str) -> APIError:
    return APIError(400, "INVALIDJOB", message)


class BulkJobs:
    """The org's Bulk API 2.0 query jobs (callers serialise access)."""

    def __init__(self, org: Org, *, polls_in_progress: int) -> None:
        self.org = org
        self.polls_in_progress = polls_in_progress
        self._jobs: dict[str, _Job] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise APIError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def create(self, version: str, body: bytes, user_id: str, fault: Fault | None) -> HTTPAnswer:
        """``POST jobs/query``: always a JSON reply, whatever ``Accept`` says."""
        try:
            spec = json.loads(body or b"{}")
        except ValueError:
            raise APIError(400, "JSON_PARSER_ERROR", "The request body is not JSON") from None
        if not isinstance(spec, dict) or spec.get("operation") not in ("query", "queryAll"):
            raise _invalid("operation must be query or queryAll")
        delimiter = spec.get("columnDelimiter", "COMMA")
        line_ending = spec.get("lineEnding", "LF")
        if delimiter not in _DELIMITERS or line_ending not in _LINE_ENDINGS:
            raise _invalid("unknown columnDelimiter or lineEnding")
        query = parse(str(spec.get("query", "")))
        compound = [f.name for f in query.fields if f.type == "address"]
        if query.count or query.offset or compound:
            refused = ", ".join(compound) or ("COUNT()" if query.count else "OFFSET")
            raise _invalid(f"Bulk API 2.0 queries do not support {refused}")
        rows = self.org.select(query, include_deleted=spec["operation"] == "queryAll")
        job = _Job(
            self.org.new_id("750"),
            spec["operation"],
            query.schema.name,
            query.fields,
            rows,
            user_id,
            self.org.now(),
            version,
            delimiter,
            line_ending,
        )
        self._jobs[job.id] = job
        if fault is not None and fault.name == "job_failed":
            self._fail(job)
        reply = {k: v for k, v in job.describe().items() if k != "state"}
        return json_answer(200, {**reply, "state": "UploadComplete"})

    def _fail(self, job: _Job) -> None:
        job.state = "Failed"
        job.info["errorMessage"] = "InternalServerError: the job failed (scripted fault)"

    def status(self, job_id: str, fault: Fault | None) -> HTTPAnswer:
        """``GET jobs/query/{id}``: advances the job through its states."""
        job = self._job(job_id)
        if fault is not None and fault.name == "job_failed" and job.state not in _DONE:
            self._fail(job)
        if job.state not in _DONE:
            job.polls += 1
            job.state = "JobComplete" if job.polls > self.polls_in_progress else "InProgress"
        return json_answer(200, job.describe())

    def abort(self, job_id: str, body: bytes) -> HTTPAnswer:
        """``PATCH jobs/query/{id}`` with ``{"state": "Aborted"}``."""
        job = self._job(job_id)
        try:
            wanted = json.loads(body or b"{}").get("state")
        except (ValueError, AttributeError):
            wanted = None
        if wanted != "Aborted":
            raise _invalid("a query job can only be set to Aborted")
        if job.state in _DONE:
            raise _invalid(f"the job is already {job.state}")
        job.state = "Aborted"
        return json_answer(200, job.describe())

    def delete(self, job_id: str) -> HTTPAnswer:
        """``DELETE jobs/query/{id}`` (finished jobs only)."""
        if self._job(job_id).state not in _DONE:
            raise _invalid("only a finished job can be deleted")
        del self._jobs[job_id]
        return json_answer(204, None)

    def results(self, job_id: str, version: str, params: dict[str, str]) -> HTTPAnswer:
        """``GET jobs/query/{id}/results?maxRecords=&locator=``: one CSV chunk."""
        job = self._job(job_id)
        if job.state != "JobComplete":
            message = f"The job {job.id} is {job.state}, not JobComplete"
            raise APIError(412, "JOB_NOT_COMPLETE", message)
        if version != job.version:
            raise APIError(409, "INVALIDJOB", f"The job was created with API v{job.version}")
        try:
            offset = int(base64.b64decode(params["locator"] + "==")) if "locator" in params else 0
            size = int(params.get("maxRecords", len(job.rows) or 1))
        except (ValueError, binascii.Error):
            raise _invalid("maxRecords and locator must come from the previous chunk") from None
        if size < 1 or not 0 <= offset <= len(job.rows):
            raise _invalid("maxRecords must be positive and the locator valid")
        end = min(offset + size, len(job.rows))
        out = io.StringIO()
        writer = csv.writer(
            out, delimiter=_DELIMITERS[job.delimiter], lineterminator=_LINE_ENDINGS[job.line_ending]
        )
        writer.writerow([f.name for f in job.fields])
        for record in job.rows[offset:end]:
            writer.writerow([csv_text(f.value(record)) for f in job.fields])
        more = end < len(job.rows)
        locator = base64.b64encode(str(end).encode()).decode().rstrip("=") if more else "null"
        headers = {
            "Content-Type": "text/csv",
            "Sforce-NumberOfRecords": str(end - offset),
            "Sforce-Locator": locator,
        }
        return HTTPAnswer(200, headers, out.getvalue().encode())
