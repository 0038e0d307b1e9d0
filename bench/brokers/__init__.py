"""Brokers the event-source benchmark reads: per broker, a target of the bench's own (a stream, a table),
``publish_many(n)`` to fill it, the broker's own publish+consume rate (the baseline a mapping's throughput
is compared with) and the rate of lambdad's source for it driven through the source contract alone."""
