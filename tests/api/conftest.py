"""The voicemail API's tests need a node with the delivery layer and a mail server."""

from tests.delivery.conftest import any_node, mail  # noqa: F401  (fixtures)
