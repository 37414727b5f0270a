"""``POST /jobs/{id}/rerun``: a finished job run again as a new job (``jobs.services.rerun``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import services
from jobs.resources import job_output

from . import schema
from .base import AuthenticatedApi
from .errors import PROBLEM_JSON
from .permissions import WritesJobs
from .schema import COMMON, JOB_ID, JSON, ok, problems
from .views import create_request, created_answer, parse_job_id


class JobRerunApi(AuthenticatedApi):
    """Run a finished job again: a new job, linked to this one both ways."""

    name = "Re-run a job"
    permission_classes = [permissions.IsAuthenticated, WritesJobs]

    @extend_schema(
        summary="Re-run a finished job",
        description="Creates a new job with the finished job's type, params, metadata, queue, callback URL, "
        "`max_attempts` and timeout; the body may replace `params`, `metadata`, `max_attempts`, `timeout`, "
        "`queue` and `callback_url` (checked exactly as on create; null: the create's default) and, "
        "with `resume: true`, start it from the old job's latest checkpoint. "
        "The new job's `rerun_of` is the old job's id; the old job's history gets a `rerun` event with the "
        "new id, and is otherwise unchanged. `Idempotency-Key` works as on create. An empty body re-runs "
        "the job as it was.",
        request={JSON: schema.ref("JobRerun")},
        parameters=[JOB_ID, *schema.create_parameters("job")],
        responses={
            **ok(201, "Job", "The new job (or, replayed, the one an earlier request created)."),
            **problems(400, 404, *COMMON, 413, 415, 422, 429),
            (409, PROBLEM_JSON): OpenApiResponse(
                schema.ref("Problem"), description="The job has not finished yet (`job_status`)."
            ),
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        job_uuid = parse_job_id(job_id)
        fields = create_request(request, services.RERUN_FIELDS)
        job, created = services.job_rerun(
            app=request.user,
            job_id=job_uuid,
            overrides={name: fields[name] for name in services.RERUN_OVERRIDES if name in fields},
            resume=fields.get("resume", False),
            idempotency_key=fields["idempotency_key"],
            unknown_fields=fields["unknown_fields"],
        )
        return created_answer(job_output(job, request), replayed=not created)
