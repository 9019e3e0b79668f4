"""`/v2.0/metering/metering-labels` and `/v2.0/metering/metering-label-rules`: request shapes.

Nothing can be updated. A rule's prefixes are checked by the service, as Neutron's metering
plugin checks them (with metering_source_and_destination_fields, the API layer does not).
"""

from __future__ import annotations

from neutrino.api.v2.attrs import REQUIRED, Attr, boolean, one_of, project_id, string, uuid_str

DIRECTIONS = ("ingress", "egress")

METERING_LABEL = {
    "id": Attr(post=False, sort=True, filter_convert=str),
    "name": Attr(string(255), default="", sort=True),
    "description": Attr(string(1024), default="", sort=True),
    "project_id": Attr(project_id, sort=True),
    "tenant_id": Attr(project_id, sort=True),
    "shared": Attr(boolean, default=False, sort=True),
}

METERING_LABEL_RULE = {
    "id": Attr(post=False, sort=True, filter_convert=str),
    "metering_label_id": Attr(uuid_str(), default=REQUIRED, sort=True, filter_convert=str),
    "direction": Attr(one_of(*DIRECTIONS), default=REQUIRED, sort=True),
    "excluded": Attr(boolean, default=False, sort=True),
    "remote_ip_prefix": Attr(sort=True),
    "source_ip_prefix": Attr(sort=True),
    "destination_ip_prefix": Attr(sort=True),
    "project_id": Attr(project_id, filter=False),
    "tenant_id": Attr(project_id, filter=False),
}
