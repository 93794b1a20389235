"""Custom search attributes that make smols findable in the Temporal UI and with `smol list`."""

from temporalio.common import SearchAttributeKey

SMOL_ADDRESS = SearchAttributeKey.for_keyword("SmolAddress")
SMOL_STEP = SearchAttributeKey.for_keyword("SmolStep")
SMOL_STATUS = SearchAttributeKey.for_keyword("SmolStatus")
ALL = [SMOL_ADDRESS, SMOL_STEP, SMOL_STATUS]
