"""The HTTP front of `manage.py serve`: what daphne's Twisted protocol lacks.

- `guards`: read timeouts (headers, a body's minimum rate), the body-size limit before a
  body is read, no form parsing in the event loop, shedding slow connections when file
  descriptors run low, and a drain that closes keep-alive connections on SIGTERM.
- `limits`: the process's open-file limit, and a log of refused connections that does not
  flood.

Imported only when serving: daphne's server module installs the asyncio reactor on import.
"""
