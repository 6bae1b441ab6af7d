"""Tenant source APIs: export clients, record validation, credentials, synthetic support data and a local fake source.

* ``client``: cursor-based exports (tickets, users); ``time_export``: time-based exports (ticket events,
  organizations); ``groups``: the groups list; ``http``: what they share (retries, timeouts, credentials).
* ``records``: the fields read from each entity and ``validate_record`` for quarantining bad records.
* ``credentials``: per-tenant API credentials from Secrets Manager.
* ``synthetic`` and ``synthetic_directory``: reproducible tickets, events, users, organizations and groups;
  ``ticket_replay``: the reference computation of ticket metrics from events.
* ``server``: a local multi-tenant source serving all of the above, with fault injection.
"""
