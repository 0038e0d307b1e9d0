"""The cluster: several lambdad nodes acting as one Lambda region on a shared PostgreSQL and NATS JetStream.

Everything here is the cluster implementation of a port whose local implementation lives in the layer
that uses it (the composition root, ``lambdad.app``, picks one or the other once):

==================  ====================================  ==========================================
port                local (single server)                 cluster (this package)
==================  ====================================  ==========================================
membership          -                                     membership.py: heartbeats in a NATS KV bucket
change notices      services/changes.FunctionChanges      changes.py: a NATS subject
code packages       store/code.NoMirror (the disk)        code.py: PostgreSQL, each disk a cache
function logs       observability/logs.KeepLocal          logs.py: a JetStream stream
concurrency leases  invocation.LocalConcurrencyLeases     concurrency.py: per-node shares in NATS KV
invoke router       none: every invoke runs here          forwarding.py + placement.py: HTTP to a node
work ownership      events/ownership.LocalOwnership       ownership.py: PostgreSQL leases, rendezvous
==================  ====================================  ==========================================

PostgreSQL holds the state (the same tables as a single server); NATS carries what moves between nodes.
``connection.py`` names every NATS stream, bucket and subject after ``--cluster-name``.
"""
