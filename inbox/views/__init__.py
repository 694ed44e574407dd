"""The agents' views: pages.py (the list and the thread), actions.py (close, reopen).

Thin: parse the request, call a service or a selector, render. healthz/readyz are in
inbox/health.py, the JSON read API in inbox/api.py.
"""
