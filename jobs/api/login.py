"""Browsable API log-in with an application token (kept as its id in a server-side session).

Wrong tokens count against the client address's failed attempts, as on the API: once
they are used up, every log-in attempt from that address is a 429 until the window ends.
"""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from jobs import selectors
from jobs.services import ratelimit

from .addresses import client_address
from .auth import SESSION_TOKEN_ID
from .errors import problem_response
from .middleware import note_rate_window


class TokenLoginForm(forms.Form):
    token = forms.CharField(widget=forms.PasswordInput, max_length=200, label="Application token")


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


def _too_many(request: HttpRequest, failures: ratelimit.Window) -> HttpResponse:
    """429 problem+json: this address used up its failed attempts."""
    note_rate_window(request, failures)
    return problem_response(request, failures.refusal())


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    form = TokenLoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        address = client_address(request.META)
        failures = ratelimit.failures(address=address)
        if failures is not None and failures.hits >= failures.limit:
            return _too_many(request, failures)
        app = selectors.app_for_token(token=form.cleaned_data["token"].strip())
        if app is not None:
            request.session.cycle_key()
            request.session[SESSION_TOKEN_ID] = str(app.token_id)
            return HttpResponseRedirect(_next_url(request))
        failures = ratelimit.failure_count(address=address)
        if failures is not None and failures.hits > failures.limit:
            return _too_many(request, failures)  # another worker counted the last allowed one meanwhile
        note_rate_window(request, failures)
        form.add_error("token", "Invalid or revoked token.")
    status = 400 if request.method == "POST" else 200
    return render(request, "jobs/login.html", {"form": form, "next": _next_url(request)}, status=status)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return HttpResponseRedirect(_next_url(request))
