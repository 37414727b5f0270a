"""The operators' web dashboard: server-rendered pages for a browser logged in with an
``admin`` token through the browsable API's log-in (``/api-auth/login/``)."""
