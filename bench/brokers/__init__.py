"""Brokers the event-source benchmark (``bench/event_sources.py``) reads, one module each, with the same
functions so that a source's row is a few lines there:

- ``endpoint()``: the broker URL for ``LAMBDAD_EVENT_SOURCES`` (ready to use);
- ``new_arn()`` / ``remove(arn)``: a source of the bench's own (a stream, a table) and its removal;
- ``publish_many(arn, n)``: ``n`` small records into it (publish, insert rows);
- ``raw_seconds(n)``: the broker alone publishing ``n`` records to a fresh source and consuming
  (acknowledging) them all with its own client, the baseline a mapping's rate is compared with;
- ``source_rate(n)``: events/s through lambdad's source for the broker, driven by the source contract
  alone (no poller, no function);
- ``MAPPING``: CreateEventSourceMapping's other parameters for the kind.
"""
