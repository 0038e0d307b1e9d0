"""Event source mappings at work: one poller per enabled mapping (``poller``), kept in step with the
stored mappings by the supervisor (``supervisor``); AWS's shapes of what goes in and out (``records``)."""

from lambdad.events.mappings.poller import Poller
from lambdad.events.mappings.supervisor import MappingCatalog, MappingSupervisor

__all__ = ["MappingCatalog", "MappingSupervisor", "Poller"]
