"""The tool library. See :mod:`restora.tools.base` for the contract and
:mod:`restora.tools.registry` for lookup.

Examples:
    >>> from restora.tools import create_tool, list_tools
    >>> list(list_tools(task="dehaze"))               # doctest: +SKIP
    ['dehaze_clahe', 'dehaze_dcp']
"""

from restora.imageio import check_image
from restora.tools.base import Tool, ToolParams
from restora.tools.registry import ToolBox, create_tool, get_tool, list_tools

__all__ = ["Tool", "ToolBox", "ToolParams", "check_image", "create_tool", "get_tool", "list_tools"]
