"""What lambdad does, independent of how it is asked: function management, tags, account settings.

Services are synchronous (the store is); the API layer runs them in worker threads.
"""
