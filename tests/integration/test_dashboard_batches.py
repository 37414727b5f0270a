"""The dashboard's batch pages through Django's test client, on the real database: the
list of every application's batches, a batch's page (counts, progress, history, newest
jobs), the link from a job's page, 304 while nothing changes, 404, and who may see them."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from jobs import selectors, services

from .conftest import new_app
from .test_dashboard import InlineCode, admin, logged_in, text  # noqa: F401  (admin: a fixture)


def make_batch(app, size=3, **extra):
    jobs = [{"type": "fibonacci", "params": {"n": i}} for i in range(size)]
    return services.batch_create(app=app, jobs=jobs, **extra)[0]


def batch_jobs(app, batch):
    return selectors.job_list(app=app, filters=selectors.JobFilters(batch=batch.id))


@pytest.mark.parametrize("path", ["/dashboard/batches/", f"/dashboard/batches/{uuid.uuid4()}/"], ids=["list", "one"])
def test_a_browser_not_logged_in_is_sent_to_the_login_page(db, path):
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"].startswith("/api-auth/login/")


def test_a_token_without_the_admin_scope_gets_403(db):
    _, token = new_app()
    assert logged_in(token).get("/dashboard/batches/").status_code == 403


def test_batch_list_shows_every_applications_batches_newest_first(admin, db):  # noqa: F811
    first, _ = new_app()
    second, _ = new_app()
    made = [make_batch(first), make_batch(second, 5), make_batch(first, 2)]
    claimed = services.job_claim(job_id=batch_jobs(second, made[1])[0].id, worker="w")
    services.job_succeed(job=claimed, result=None)
    response = admin.get("/dashboard/batches/")
    assert response.status_code == 200
    page = response.content.decode()
    assert re.findall(r'<tr data-batch-id="([0-9a-f-]+)">', page) == [str(b.id) for b in reversed(made)]
    assert first.name in page and second.name in page
    row = page[page.index(f'data-batch-id="{made[1].id}"') :].split("</tr>")[0]
    cells = re.findall(r'<td class="num">(\d+(?:/\d+)?)</td>', row)
    assert cells == ["1/5", "0", "4", "0", "1", "0", "0"]  # finished, then each status
    assert 'aria-current="page">Batches' in page


def test_batch_list_pages_with_the_keyset_cursor(admin, db):  # noqa: F811
    app, _ = new_app()
    made = [make_batch(app, 1) for _ in range(5)]
    seen, url = [], "/dashboard/batches/?limit=2"
    while url:
        page = admin.get(url).content.decode()
        seen += re.findall(r'<tr data-batch-id="([0-9a-f-]+)">', page)
        found = re.search(r'<a href="([^"]+)" id="next-page"', page)
        url = "/dashboard/batches/" + found.group(1).replace("&amp;", "&") if found else None
    assert seen[: len(made)] == [str(b.id) for b in reversed(made)]


def test_batch_list_refuses_what_the_api_refuses(admin, db):  # noqa: F811
    response = admin.get("/dashboard/batches/?limit=0")
    assert response.status_code == 400 and "limit :" in text(response)


def test_batch_page_shows_counts_progress_history_and_newest_jobs(admin, db, settings):  # noqa: F811
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    app, _ = new_app()
    batch = make_batch(app, 4, metadata={"migration": "m <b>"}, callback_url="http://127.0.0.1:9/hook")
    first, second, *_ = batch_jobs(app, batch)
    services.job_succeed(job=services.job_claim(job_id=first.id, worker="w"), result=None)
    running = services.job_claim(job_id=second.id, worker="w")
    services.job_progress(job=running, percent=50.0, message="", milestone=False)

    response = admin.get(f"/dashboard/batches/{batch.id}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<span class="status status-batch-active" id="batch-state">active</span>' in page
    # (100 + 50 + 0 + 0) / 4
    assert '<progress id="batch-progress" max="100" value="37.5">' in page
    assert "1 of 4 jobs ended" in text(response)
    counts = dict(re.findall(r'<td class="num" data-status="([a-z]+)">(\d+)</td>', page))
    assert counts == dict(scheduled="0", queued="2", running="1", succeeded="1", failed="0", cancelled="0")
    assert f'href="/dashboard/jobs/?batch={batch.id}&amp;status=running"' in page
    assert f'href="/dashboard/jobs/?batch={batch.id}" id="batch-all-jobs"' in page
    assert sorted(re.findall(r'<tr data-job-id="([0-9a-f-]+)">', page)) == sorted(
        str(job.id) for job in batch_jobs(app, batch)
    )
    assert "m &lt;b&gt;" in page and "m <b>" not in page
    assert "http://127.0.0.1:9/hook" in page and app.name in page
    assert re.findall(r'<tr data-kind="([a-z_]+)">', page) == ["created"]
    assert 'data-refresh-ms="1000"' in page  # an active batch's page refreshes itself
    # The dashboard's job list takes the batch filter the page links to.
    listed = admin.get(f"/dashboard/jobs/?batch={batch.id}&status=running").content.decode()
    assert re.findall(r'<tr data-job-id="([0-9a-f-]+)">', listed) == [str(second.id)]
    # Its filter form keeps the batch, and the list links back to it.
    assert f'<input type="hidden" name="batch" value="{batch.id}">' in listed
    assert f'<a href="/dashboard/batches/{batch.id}/"><code>{batch.id}</code></a>' in listed


def test_a_finished_batch_shows_its_end_and_stops_refreshing(admin, db):  # noqa: F811
    app, _ = new_app()
    batch = make_batch(app, 2)
    services.batch_cancel(app=app, batch_id=batch.id)
    page = admin.get(f"/dashboard/batches/{batch.id}/").content.decode()
    assert '<span class="status status-batch-finished" id="batch-state">finished</span>' in page
    assert re.findall(r'<tr data-kind="([a-z_]+)">', page) == ["created", "cancel_requested", "finished"]
    assert "data-refresh-ms" not in page


def test_batch_page_answers_304_until_one_of_its_jobs_changes(admin, db):  # noqa: F811
    app, _ = new_app()
    batch = make_batch(app, 2)
    url = f"/dashboard/batches/{batch.id}/"
    etag = admin.get(url)["ETag"]
    assert admin.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    services.job_claim(job_id=batch_jobs(app, batch)[0].id, worker="w")  # the batch row itself is unchanged
    changed = admin.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_a_jobs_page_links_to_its_batch(admin, db):  # noqa: F811
    app, _ = new_app()
    batch = make_batch(app, 1)
    [job] = batch_jobs(app, batch)
    page = admin.get(f"/dashboard/jobs/{job.id}/").content.decode()
    assert f'<a href="/dashboard/batches/{batch.id}/" id="job-batch">' in page
    alone, _ = services.job_create(app=app, type="fibonacci", params={"n": 1})
    assert 'id="job-batch"' not in admin.get(f"/dashboard/jobs/{alone.id}/").content.decode()


@pytest.mark.parametrize("batch_id", [str(uuid.uuid4()), "not-a-uuid"], ids=["unknown-uuid", "not-a-uuid"])
def test_an_unknown_batch_is_404(admin, batch_id):  # noqa: F811
    response = admin.get(f"/dashboard/batches/{batch_id}/")
    assert response.status_code == 404 and "No such batch" in text(response)


def test_batch_pages_keep_scripts_and_styles_in_same_origin_static_files(admin, db):  # noqa: F811
    app, _ = new_app()
    batch = make_batch(app, 1)
    for path in ("/dashboard/batches/", f"/dashboard/batches/{batch.id}/", f"/dashboard/batches/{uuid.uuid4()}/"):
        parser = InlineCode()
        parser.feed(admin.get(path).content.decode())
        assert parser.found == [], (path, parser.found)
        assert parser.scripts == ["/static/jobs/dashboard/dashboard.js"]
