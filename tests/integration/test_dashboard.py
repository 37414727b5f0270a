"""The web dashboard through Django's test client, on the real database: who may see it,
and what each page shows."""

from __future__ import annotations

import html
import json
import re
import socket
import uuid
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from django.test import Client

from jobs import selectors, services
from jobs.dashboard.access import is_admin

from .conftest import new_app


def admin_app():
    """An application whose token has the admin scope (and reads jobs), as an operator's."""
    token, record = services.token_issue(app_name=f"ops-{uuid.uuid4().hex[:8]}", scopes=["admin", "jobs:read"])
    return record, token


def logged_in(token: str) -> Client:
    browser = Client()
    response = browser.post("/api-auth/login/", {"token": token, "next": "/dashboard/"})
    assert response.status_code == 302, response.content
    return browser


@pytest.fixture
def admin(db) -> Client:
    _, token = admin_app()
    return logged_in(token)


def create(app, job_type="fibonacci", params=None, metadata=None):
    params = params if params is not None else {"n": 10}
    return services.job_create(app=app, type=job_type, params=params, metadata=metadata or {})[0]


def run_to_success(job, result=None):
    claimed = services.job_claim(job_id=job.id, worker="test-worker")
    assert claimed is not None
    return services.job_succeed(job=claimed, result=result if result is not None else {"ok": True})


def text(response) -> str:
    """The page's text without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).strip()


# -- who may see it ---------------------------------------------------------------------------
def test_is_admin_reads_the_admin_scope():
    assert is_admin(SimpleNamespace(scopes=frozenset({"admin"})))
    assert is_admin(SimpleNamespace(scopes=("jobs:read", "admin")))
    assert not is_admin(SimpleNamespace(scopes=frozenset({"jobs:read", "jobs:write"})))
    assert not is_admin(SimpleNamespace(name="no scopes attribute"))


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/",
        "/dashboard/jobs/",
        "/dashboard/jobs/?status=running&metadata.k=v",
        f"/dashboard/jobs/{uuid.uuid4()}/",
    ],
    ids=["overview", "list", "list-filtered", "one-job"],
)
def test_a_browser_not_logged_in_is_sent_to_the_login_page_and_back(db, path):
    response = Client().get(path)
    assert response.status_code == 302
    login, _, query = response["Location"].partition("?")
    assert login == "/api-auth/login/"
    from urllib.parse import parse_qs

    assert parse_qs(query)["next"] == [path]


def test_logging_in_with_an_admin_token_lands_on_the_dashboard(db):
    _, token = admin_app()
    browser = Client(enforce_csrf_checks=True)
    first = browser.get("/dashboard/jobs/")
    form = browser.get(first["Location"])
    assert form.status_code == 200
    login = browser.post(
        first["Location"],
        {"token": token, "next": "/dashboard/jobs/", "csrfmiddlewaretoken": browser.cookies["csrftoken"].value},
    )
    assert login.status_code == 302 and login["Location"] == "/dashboard/jobs/"
    assert browser.get("/dashboard/jobs/").status_code == 200


def test_a_token_without_the_admin_scope_gets_403(db):
    app, token = new_app()
    job = create(app)
    browser = logged_in(token)
    for path in ("/dashboard/", "/dashboard/jobs/", f"/dashboard/jobs/{job.id}/"):
        response = browser.get(path)
        assert response.status_code == 403, path
        assert "admin" in text(response) and app.name in text(response)
        assert str(job.id) not in response.content.decode()


def test_a_revoked_admin_token_is_logged_out(admin, db):
    assert admin.get("/dashboard/").status_code == 200
    for token in selectors.token_list():
        if "admin" in token.scopes:
            services.token_revoke(ref=str(token.id))
    response = admin.get("/dashboard/")
    assert response.status_code == 302 and response["Location"].startswith("/api-auth/login/")


def test_an_api_token_header_does_not_open_the_dashboard(db):
    """The dashboard is for a logged-in browser: an Authorization header is not a session."""
    _, token = admin_app()
    response = Client().get("/dashboard/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 302


# -- overview ---------------------------------------------------------------------------------
def _count_cells(response, job_type: str) -> list[int]:
    row = re.search(rf'<tr data-type="{re.escape(job_type)}">(.*?)</tr>', response.content.decode(), re.S)
    assert row, f"no row for {job_type!r}"
    return [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', row.group(1))]


def test_overview_counts_jobs_of_every_application_by_status_and_type(admin, raw):
    first, _ = new_app()
    second, _ = new_app()
    run_to_success(create(first))
    create(first)
    create(second)
    create(second, "countdown", {"seconds": 5})
    claimed = services.job_claim(job_id=create(second, "pi", {"digits": 5}).id, worker="w")
    services.job_fail(job=claimed, error=ValueError("boom"), retryable=False)

    response = admin.get("/dashboard/")
    assert response.status_code == 200
    # Columns: scheduled, queued, running, succeeded, failed, cancelled, all.
    assert _count_cells(response, "fibonacci") == [0, 2, 0, 1, 0, 0, 3]
    assert _count_cells(response, "countdown") == [0, 1, 0, 0, 0, 0, 1]
    assert _count_cells(response, "pi") == [0, 0, 0, 0, 1, 0, 1]
    assert _count_cells(response, "") == [0, 3, 0, 1, 1, 0, 5]


def test_overview_throughput_counts_the_last_minute_only(admin, raw):
    app, _ = new_app()
    old = run_to_success(create(app))
    run_to_success(create(app))
    run_to_success(create(app))
    # Move one finished job (and its creation) two minutes back; terminal rows are frozen
    # by a trigger, which this transaction alone sets aside.
    raw.execute("SET LOCAL session_replication_role = replica")
    raw.execute(
        "UPDATE jobs_job SET finished_at = now() - interval '2 minutes', created_at = now() - interval '3 minutes'"
        " WHERE id = %s",
        [old.id],
    )
    raw.execute("SET LOCAL session_replication_role = origin")
    create(app)

    assert selectors.throughput(seconds=60) == {"created": 3, "succeeded": 2, "failed": 0, "cancelled": 0}
    page = text(admin.get("/dashboard/"))
    assert "Throughput, last 60 s 2 finished (0.03/s): 2 succeeded 0 failed 0 cancelled ; 3 created" in page


def test_overview_shows_the_oldest_queued_jobs_wait(admin, raw):
    assert "none waiting" in text(admin.get("/dashboard/"))
    app, _ = new_app()
    job = create(app)
    raw.execute("UPDATE jobs_job SET created_at = now() - interval '95 seconds' WHERE id = %s", [job.id])
    page = admin.get("/dashboard/").content.decode()
    wait = re.search(r'<span class="value" id="oldest-queued">(\d+) min (\d+) s</span>', page)
    assert wait, page
    assert (int(wait.group(1)), int(wait.group(2))) >= (1, 35)


def test_overview_shows_the_clusters_and_what_their_workers_run(admin, monkeypatch):
    from django_q.conf import Conf

    from jobs import monitoring
    from tests.integration.test_monitoring import report_cluster

    assert "No cluster has reported" in text(admin.get("/dashboard/"))

    cluster_id = report_cluster(status=Conf.IDLE, workers=(5001, 5002, 5003))
    app, _ = new_app()
    job = services.job_claim(job_id=create(app).id, worker=f"{socket.gethostname()}:5002")
    assert job is not None
    page = admin.get("/dashboard/")
    row = re.search(r'<table id="clusters">.*?<tbody>(.*?)</tbody>', page.content.decode(), re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    # django-q2 reported Idle; its worker 5002 runs a job: Working, 1 running job.
    assert cells[:6] == [str(cluster_id), socket.gethostname(), "100", "Working", "3", "1"]
    assert re.fullmatch(r"\d\.\d s", cells[6]) and cells[7] == "0"  # up (just reported), reincarnations

    # A report signed with another SECRET_KEY is said, not left out in silence.
    monkeypatch.setattr(Conf, "SECRET_KEY", "another-deployment's-key")
    report_cluster()
    monkeypatch.undo()
    note = re.search(r'<p class="notice" id="cluster-note">(.*?)</p>', admin.get("/dashboard/").content.decode())
    assert note and note[1].startswith("1 cluster status report is signed with another SECRET_KEY")

    def broken():
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(monitoring, "cluster_reports", broken)
    page = admin.get("/dashboard/")
    assert page.status_code == 200 and "Cluster status could not be read: ConnectionError: cache unreachable" in text(
        page
    )


def test_overview_answers_304_while_nothing_changes(admin, db):
    app, _ = new_app()
    create(app)
    first = admin.get("/dashboard/")
    etag = first["ETag"]
    again = admin.get("/dashboard/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    create(app)
    changed = admin.get("/dashboard/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


# -- job list ---------------------------------------------------------------------------------
def listed(response) -> list[str]:
    return re.findall(r'<tr data-job-id="([0-9a-f-]+)">', response.content.decode())


def test_job_list_shows_every_applications_jobs_newest_first(admin, db):
    first, _ = new_app()
    second, _ = new_app()
    jobs = [create(first), create(second), create(first, "pi", {"digits": 3})]
    response = admin.get("/dashboard/jobs/")
    assert response.status_code == 200
    assert listed(response) == [str(j.id) for j in reversed(jobs)]
    page = response.content.decode()
    assert first.name in page and second.name in page
    # The API's own list is unchanged: an application still sees only its jobs.
    assert [j.id for j in selectors.job_list(app=first)] == [jobs[2].id, jobs[0].id]


def test_job_list_filters_like_the_api(admin, db):
    first, _ = new_app()
    second, _ = new_app()
    tagged = create(first, metadata={"migration": "customers", "batch": "1"})
    other_tag = create(second, metadata={"migration": "orders"})
    countdown = create(second, "countdown", {"seconds": 3}, metadata={"migration": "customers"})
    done = run_to_success(create(first))

    assert listed(admin.get("/dashboard/jobs/?status=succeeded")) == [str(done.id)]
    assert listed(admin.get("/dashboard/jobs/?type=countdown")) == [str(countdown.id)]
    assert listed(admin.get("/dashboard/jobs/?metadata.migration=customers")) == [str(countdown.id), str(tagged.id)]
    assert listed(admin.get("/dashboard/jobs/?metadata.migration=customers&type=fibonacci")) == [str(tagged.id)]
    assert listed(admin.get("/dashboard/jobs/?metadata.migration=orders&status=queued")) == [str(other_tag.id)]


def test_job_list_filter_form_leads_to_the_apis_parameters(admin, db):
    response = admin.get("/dashboard/jobs/", {"status": "queued", "type": "", "metadata": "migration=customers"})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/jobs/?status=queued&metadata.migration=customers"
    # A filter already applied (a hidden field) is kept; the page's cursor is not.
    response = admin.get("/dashboard/jobs/", {"metadata.a": "1", "metadata": "b=2", "cursor": "abc"})
    assert response["Location"] == "/dashboard/jobs/?metadata.a=1&metadata.b=2"
    response = admin.get("/dashboard/jobs/", {"metadata": "no-equals-sign"})
    assert response.status_code == 400 and "key=value" in text(response)


def test_job_list_pages_with_the_keyset_cursor(admin, db):
    app, _ = new_app()
    ids = [str(create(app).id) for _ in range(5)]
    newest_first = list(reversed(ids))
    seen = []
    url = "/dashboard/jobs/?limit=2&type=fibonacci"
    pages = 0
    while url:
        response = admin.get(url)
        assert response.status_code == 200
        seen += listed(response)
        pages += 1
        link = re.search(r'<a href="([^"]+)" id="next-page"', response.content.decode())
        url = "/dashboard/jobs/" + link.group(1).replace("&amp;", "&") if link else None
        if url:
            assert "limit=2" in url and "type=fibonacci" in url and "cursor=" in url
    assert pages == 3 and seen == newest_first
    assert (
        'id="first-page"'
        in admin.get(
            "/dashboard/jobs/?limit=2&cursor="
            + re.search(r"cursor=([^&\"]+)", admin.get("/dashboard/jobs/?limit=2").content.decode()).group(1)
        ).content.decode()
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=sleeping", "status"), ("stauts=queued", "stauts"), ("limit=0", "limit"), ("cursor=nope", "cursor")],
)
def test_job_list_refuses_what_the_api_refuses(admin, query, field):
    response = admin.get(f"/dashboard/jobs/?{query}")
    assert response.status_code == 400
    assert f"{field} :" in text(response)
    assert listed(response) == []


# -- one job ----------------------------------------------------------------------------------
def test_job_page_shows_params_metadata_progress_and_timeline(admin, db):
    app, _ = new_app()
    job = create(app, "countdown", {"seconds": 30}, metadata={"migration": "customers-2019", "who": "etl <b>"})
    claimed = services.job_claim(job_id=job.id, worker="host:1234")
    services.job_progress(job=claimed, percent=42.5, message="17 seconds left", milestone=True)

    response = admin.get(f"/dashboard/jobs/{job.id}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<progress id="job-progress" max="100" value="42.5">' in page
    assert '<span class="status status-running" id="job-status">running</span>' in page
    assert "17 seconds left" in page and app.name in page and "host:1234" in page
    assert "etl &lt;b&gt;" in page and "etl <b>" not in page  # metadata is escaped
    assert '"seconds": 30' in html.unescape(page)
    assert '"migration": "customers-2019"' in html.unescape(page)
    kinds = re.findall(r'<tr data-kind="([a-z_]+)">', page)
    assert kinds == ["created", "queued", "started", "progress"]
    assert 'data-refresh-ms="1000"' in page  # a running job's page refreshes itself


def test_job_page_shows_the_result_once_succeeded_and_stops_refreshing(admin, db):
    app, _ = new_app()
    job = run_to_success(create(app, "pi", {"digits": 3}), result={"digits": 3, "value": "3.141"})
    page = html.unescape(admin.get(f"/dashboard/jobs/{job.id}/").content.decode())
    shown = re.search(r'<pre id="job-result">(.*?)</pre>', page, re.S)
    assert shown and json.loads(shown.group(1)) == {"digits": 3, "value": "3.141"}
    assert 'value="100.0"' in page and "data-refresh-ms" not in page
    assert re.findall(r'<tr data-kind="([a-z_]+)">', page)[-1] == "succeeded"


def test_job_page_shows_the_error_of_a_failed_job(admin, db):
    app, _ = new_app()
    claimed = services.job_claim(job_id=create(app).id, worker="w")
    services.job_fail(job=claimed, error=ValueError("bad batch 7"), retryable=False)
    page = text(admin.get(f"/dashboard/jobs/{claimed.id}/"))
    assert "Error ValueError : bad batch 7" in page and "Result" not in page


def test_a_huge_result_is_cut_on_the_page(admin, db):
    app, _ = new_app()
    job = run_to_success(create(app), result={"value": "7" * 50_000})
    page = admin.get(f"/dashboard/jobs/{job.id}/").content.decode()
    assert "more characters: the API has it all" in page and "7" * 50_000 not in page


def test_job_page_polling_gets_304_until_the_job_or_its_history_changes(transactional_db, admin, raw):
    # Committed one by one, as workers do: each change gets its own now() for updated_at.
    app, _ = new_app()
    job = create(app, "countdown", {"seconds": 30})
    url = f"/dashboard/jobs/{job.id}/"
    first = admin.get(url)
    etag = first["ETag"]
    assert f'data-etag="{etag.replace(chr(34), "&quot;")}"' in first.content.decode()
    assert first["Cache-Control"] == "private, no-cache"

    unchanged = admin.get(url, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged["ETag"] == etag

    claimed = services.job_claim(job_id=job.id, worker="w")
    moved = admin.get(url, HTTP_IF_NONE_MATCH=etag)
    assert moved.status_code == 200 and moved["ETag"] != etag
    etag = moved["ETag"]

    services.job_progress(job=claimed, percent=10, message="27 seconds left", milestone=False)
    progressed = admin.get(url, HTTP_IF_NONE_MATCH=etag)
    assert progressed.status_code == 200 and 'value="10.0"' in progressed.content.decode()
    etag = progressed["ETag"]

    # An event that does not touch the row (as 'redelivered' does not) still changes the page.
    raw.execute("INSERT INTO jobs_event (job_id, kind, attempt) VALUES (%s, 'redelivered', 1)", [job.id])
    noted = admin.get(url, HTTP_IF_NONE_MATCH=etag)
    assert noted.status_code == 200 and 'data-kind="redelivered"' in noted.content.decode()


def test_a_long_history_shows_its_latest_entries_and_says_where_the_rest_is(admin, app, raw, monkeypatch):
    from jobs.dashboard import views

    monkeypatch.setattr(views, "EVENTS_SHOWN", 3)
    job = create(app, "countdown", {"seconds": 30})
    short = admin.get(f"/dashboard/jobs/{job.id}/").content.decode()
    assert short.count("<tr data-kind=") == 2 and "job-timeline-earlier" not in short  # created, queued
    for attempt in range(1, 5):
        raw.execute("INSERT INTO jobs_event (job_id, kind, attempt) VALUES (%s, 'redelivered', %s)", [job.id, attempt])
    page = admin.get(f"/dashboard/jobs/{job.id}/").content.decode()
    assert page.count("<tr data-kind=") == 3 and 'data-kind="created"' not in page
    assert "The latest 3 entries; 3 earlier ones" in page and f"GET /jobs/{job.id}/events" in page


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid"], ids=["unknown-uuid", "not-a-uuid"])
def test_an_unknown_job_is_404(admin, job_id):
    response = admin.get(f"/dashboard/jobs/{job_id}/")
    assert response.status_code == 404 and "No such job" in text(response)


# -- static files and the Content-Security-Policy -------------------------------------------
class InlineCode(HTMLParser):
    """Collects whatever a strict CSP (script-src 'self'; style-src 'self') would block."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script":
            self._in_script = True
            if "src" not in names:
                self.found.append("inline <script>")
            else:
                self.scripts.append(names["src"])
        if tag == "style":
            self.found.append("<style> element")
        if tag == "link" and names.get("rel") == "stylesheet":
            self.styles.append(names["href"])
        for name, value in attrs:
            if name == "style" or name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=…>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append("script body")


def test_every_page_keeps_scripts_and_styles_in_same_origin_static_files(admin, db):
    app, token = new_app()
    job = create(app, metadata={"k": "v"})
    pages = [
        admin.get("/dashboard/"),
        admin.get("/dashboard/jobs/"),
        admin.get("/dashboard/jobs/?status=nope"),
        admin.get(f"/dashboard/jobs/{job.id}/"),
        admin.get(f"/dashboard/jobs/{uuid.uuid4()}/"),
        logged_in(token).get("/dashboard/"),  # the 403 page
    ]
    assets = set()
    for page in pages:
        parser = InlineCode()
        parser.feed(page.content.decode())
        assert parser.found == [], (page.request["PATH_INFO"], parser.found)
        job_page = page.request["PATH_INFO"] == f"/dashboard/jobs/{job.id}/"
        # The job page also has its log's script.
        assert parser.scripts == ["/static/jobs/dashboard/dashboard.js"] + (
            ["/static/jobs/dashboard/joblog.js"] if job_page else []
        )
        assert parser.styles == ["/static/jobs/dashboard/dashboard.css"]
        assets |= {*parser.scripts, *parser.styles}
    for asset in assets:
        served = Client().get(asset)
        assert served.status_code == 200, asset
        assert b"".join(served.streaming_content if served.streaming else [served.content])


def test_a_database_outage_is_503_not_500(admin, monkeypatch):
    from jobs.exceptions import DatabaseUnavailable

    def down(**kwargs):
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(selectors, "platform_stats", down)
    response = admin.get("/dashboard/")
    assert response.status_code == 503 and response["Retry-After"].isdigit()


def test_a_refusal_from_the_session_authentication_is_the_apis_problem_answer(admin, monkeypatch):
    """What the authentication refuses (a rate limit, say) is answered as the API answers it."""
    from rest_framework import exceptions

    from jobs.api.auth import AppSessionAuthentication

    def throttled(self, request):
        raise exceptions.Throttled(wait=7)

    monkeypatch.setattr(AppSessionAuthentication, "authenticate", throttled)
    response = admin.get("/dashboard/jobs/")
    assert response.status_code == 429 and response["Retry-After"] == "7"
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["status"] == 429


# -- checkpoint and log on the job page --------------------------------------------------------
def log_rows(page: str) -> list[tuple[str, str, str]]:
    """(line id, level, message) of each log line the page shows."""
    rows = re.findall(r'<tr data-line-id="(\d+)" data-level="(\w+)">(.*?)</tr>', page, re.S)
    return [
        (i, level, html.unescape(re.search(r'<td class="message">(.*?)</td>', row, re.S).group(1)))
        for i, level, row in rows
    ]


def write_lines(job, *messages, level="info"):
    at = job.created_at
    lines = [services.log_line(message=m, level=level, fields={"n": n}, at=at) for n, m in enumerate(messages)]
    services.job_log_append(job=job, lines=lines, dropped=0)


def test_job_page_shows_the_checkpoint_and_the_log(admin, db):
    app, _ = new_app()
    running = services.job_claim(job_id=create(app).id, worker="w")
    page = admin.get(f"/dashboard/jobs/{running.id}/").content.decode()
    assert 'id="job-checkpoint-none"' in page and log_rows(page) == []
    assert 'data-after="0"' in page and 'data-refresh-ms="1000" data-status="running"' in page

    services.job_checkpoint(job=running, state={"last_id": 500, "note": "<b>x</b>"}, event=True)
    write_lines(running, "batch 1 <sent>", "batch 2 sent")
    page = admin.get(f"/dashboard/jobs/{running.id}/").content.decode()
    state = html.unescape(re.search(r'<pre id="job-checkpoint-state">(.*?)</pre>', page, re.S).group(1))
    assert json.loads(state) == {"last_id": 500, "note": "<b>x</b>"}
    assert "<b>x</b>" not in page  # shown as text
    rows = log_rows(page)
    assert [(level, message) for _, level, message in rows] == [("info", "batch 1 <sent>"), ("info", "batch 2 sent")]
    assert f'data-after="{rows[-1][0]}"' in page
    assert '<span id="job-log-total">2</span>' in page
    timeline = re.search(r'<section id="job-timeline".*?</section>', page, re.S).group(0)
    assert 'data-kind="checkpoint"' in timeline

    services.job_succeed(job=running, result=1)
    done = admin.get(f"/dashboard/jobs/{running.id}/").content.decode()
    assert "data-refresh-ms" not in done and len(log_rows(done)) == 2  # finished: the script stays idle


def test_job_page_opens_on_the_latest_lines_and_links_a_rerun(admin, db, monkeypatch):
    from jobs.dashboard import joblog

    monkeypatch.setattr(joblog, "LOG_SHOWN", 3)
    app, _ = new_app()
    running = services.job_claim(job_id=create(app).id, worker="w")
    write_lines(running, *(f"line {n}" for n in range(5)))
    old = services.job_fail(job=running, error=ValueError("x"), retryable=False)
    page = admin.get(f"/dashboard/jobs/{old.id}/").content.decode()
    assert [message for _, _, message in log_rows(page)] == ["line 2", "line 3", "line 4"]
    assert "the page opened on the latest 3" in text(admin.get(f"/dashboard/jobs/{old.id}/"))
    new, _ = services.job_rerun(app=app, job_id=old.id)
    rerun_page = admin.get(f"/dashboard/jobs/{new.id}/").content.decode()
    assert f'href="/dashboard/jobs/{old.id}/"' in rerun_page
    old_page = admin.get(f"/dashboard/jobs/{old.id}/").content.decode()
    assert 'data-kind="rerun"' in old_page and str(new.id) in old_page


def test_the_log_feed_gives_the_lines_after_one_with_304_until_there_are_more(transactional_db, admin, monkeypatch):
    from jobs.dashboard import joblog

    monkeypatch.setattr(joblog, "LOG_SHOWN", 2)
    app, _ = new_app()
    running = services.job_claim(job_id=create(app).id, worker="w")
    write_lines(running, "a", "b", "c")
    feed = f"/dashboard/jobs/{running.id}/logs"
    first = admin.get(f"{feed}?after=0")
    body = json.loads(first.content)
    assert [line["message"] for line in body["results"]] == ["a", "b"] and body["next"] is True
    assert body["status"] == "running" and body["total"] == 3 and body["dropped"] == 0
    last = body["results"][-1]["id"]
    rest = admin.get(f"{feed}?after={last}")
    body = json.loads(rest.content)
    assert [line["message"] for line in body["results"]] == ["c"] and body["next"] is False
    assert body["results"][0]["fields"] == {"n": 2} and body["results"][0]["attempt"] == 1
    tail = body["results"][-1]["id"]
    quiet = admin.get(f"{feed}?after={tail}")
    assert json.loads(quiet.content)["results"] == []
    assert admin.get(f"{feed}?after={tail}", HTTP_IF_NONE_MATCH=quiet["ETag"]).status_code == 304
    write_lines(running, "d")
    news = admin.get(f"{feed}?after={tail}", HTTP_IF_NONE_MATCH=quiet["ETag"])
    assert news.status_code == 200 and [line["message"] for line in json.loads(news.content)["results"]] == ["d"]
    assert news["Cache-Control"] == "private, no-cache"


def test_the_log_feed_is_for_operators_only(db):
    app, token = new_app()
    job = create(app)
    assert Client().get(f"/dashboard/jobs/{job.id}/logs").status_code == 302  # to the log-in page
    assert logged_in(token).get(f"/dashboard/jobs/{job.id}/logs").status_code == 403
    _, admin_token = admin_app()
    operator = logged_in(admin_token)
    missing = operator.get(f"/dashboard/jobs/{uuid.uuid4()}/logs")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"
    bad = operator.get(f"/dashboard/jobs/{job.id}/logs?after=-1")
    assert bad.status_code == 400 and json.loads(bad.content)["errors"][0]["field"] == "after"
