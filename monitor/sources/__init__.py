"""Watch sources: where the desired watch set is read from (files, CSV directories, a URL).

An adapter family like `api/`, `store/` and `sinks/`: each source reads into a `Listing`
(watches with their source name, problems as one line each); `core.watches.reconcile` decides
what that changes in the store.
"""

from monitor.sources.files import read_dir, read_file
from monitor.sources.listing import Format, Listing, parse
from monitor.sources.url import SourceError, UrlOptions, UrlReader

__all__ = [
    "Format",
    "Listing",
    "SourceError",
    "UrlOptions",
    "UrlReader",
    "parse",
    "read_dir",
    "read_file",
]
