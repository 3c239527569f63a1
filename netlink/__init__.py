"""rtnetlink by hand, for the hot paths: :mod:`netlink.decode` turns messages
into netinfo's plain dicts, :mod:`netlink.encode` builds the few requests a
network setup sends most, :mod:`netlink.constants` holds the numbers both
use. It configures nothing: the live netinfo (superd) and the iproute2
configurator use it."""
