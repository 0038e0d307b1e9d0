"""What runs functions when something other than a caller asks: durable Event invocations with their
retries and destinations, event source mappings polling brokers and databases, and schedules.

Sits above the invoke pipeline (``lambdad.invocation``) and below the API: everything here ends in
``Invoker.invoke``.
"""
