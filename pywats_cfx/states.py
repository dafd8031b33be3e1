"""Equipment states of IPC-CFX ``ResourceState``: the SEMI E10 (with E58) state codes.

CFX writes a state as a JSON number in old examples (``2200``), as a string since 2019 (``"1100"``), and
older endpoints send the legacy codes ``"22A0"``/``"22B0"`` for 2201/2202. The first digit is the E10
category: 1 productive (PRD), 2 standby (SBY), 3 engineering (ENG), 4 scheduled downtime (SDT),
5 unscheduled downtime (USD), 6 non-scheduled time (NST); ``code // 1000 * 1000`` is the category's code.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidResourceStateError

__all__ = ["CATEGORIES", "STATE_NAMES", "state_category", "state_code", "state_name"]

#: Category code -> SEMI E10 category abbreviation.
CATEGORIES: dict[int, str] = {1000: "PRD", 2000: "SBY", 3000: "ENG", 4000: "SDT", 5000: "USD", 6000: "NST"}

#: Known codes -> the names the IPC-CFX SDK gives them (enum ``CFX.Structures.ResourceState``), except 5100,
#: which the SDK misspells ``USD_UserMaintentanceDelay``; both spellings are read.
STATE_NAMES: dict[int, str] = {
    1000: "PRD",
    1100: "PRD_RegularWork",
    1200: "PRD_WorkForThirdParties",
    1300: "PRD_Rework",
    1400: "PRD_Engineering",
    2000: "SBY",
    2100: "SBY_NoOperator",
    2200: "SBY_NoProduct",
    2201: "SBY_NoProductBlocked",
    2202: "SBY_NoProductStarved",
    2300: "SBY_NoSupportTool",
    2400: "SBY_AssociatedClusterModuleDown",
    2500: "SBY_NoHost",
    3000: "ENG",
    3100: "ENG_ProcessExperiments",
    3200: "ENG_EquipmentExperiments",
    4000: "SDT",
    4100: "SDT_UserMaintenanceDelay",
    4200: "SDT_SuppliedMaintenanceDelay",
    4300: "SDT_PreventiveMaintenance",
    4400: "SDT_ChangeOfConsumables",
    4500: "SDT_Setup",
    4600: "SDT_ProductionTest",
    4700: "SDT_FacilitiesRelated",
    5000: "USD",
    5100: "USD_UserMaintenanceDelay",
    5200: "USD_SuppliedMaintenanceDelay",
    5300: "USD_Repair",
    5400: "USD_OutOfSpecInputMaterial",
    5500: "USD_ChangeOfConsumables",
    5600: "USD_FacilitiesRelated",
    6000: "NST",
    6100: "NST_UnworkedShifts",
    6200: "NST_EquipmentInstallation",
    6300: "NST_EquipmentModifications",
    6400: "NST_OfflineTraining",
    6500: "NST_ShutdownAndStartup",
}

# Letters in a code were the pre-2019 way to write sub-states of 2200; the SDK now uses 2201/2202.
_LEGACY: dict[str, int] = {"22A0": 2201, "22B0": 2202}

# State names as senders write them, upper-cased: Newtonsoft's StringEnumConverter reads the member names of
# CFX/Structures/ResourceState.cs case-insensitively, and CFX-Java writes them as text
# (sdk/generated_src/main/java/org/ipc/cfx/structures/ResourceState.java, @JsonValue getText). The SDK
# declares 5100 as ``USD_UserMaintentanceDelay`` (sic) and CFX-Java copies it; the corrected spelling that
# STATE_NAMES gives is read too.
_BY_NAME: dict[str, int] = {name.upper(): code for code, name in STATE_NAMES.items()}
_BY_NAME["USD_USERMAINTENTANCEDELAY"] = 5100


def state_code(value: Any, *, field: str = "ResourceState", where: str = "") -> int:
    """Return the SEMI E10 state code of a CFX ``ResourceState`` value.

    Args:
        value: an int (``2200``), an integral float, a numeric string (``"1100"``), a legacy code
            ``"22A0"``/``"22B0"`` (case-insensitive; 2201/2202), or an SDK member name in any letter case
            (``"SBY_NoProduct"``, the SDK's ``"USD_UserMaintentanceDelay"`` as well as the corrected
            spelling, CFX-Java's text), as ``CFX/Structures/ResourceState.cs`` (``StateJsonConverter``)
            reads them.
        field: the field path to report in the error (``NewState``, ``RelatedFault.State``).
        where: the input's origin (file, queue, request) to report in the error.

    Returns:
        The code, 1000..6999. Codes inside a category that the table does not list are accepted:
        vendors define sub-states, and the category is still known.

    Raises:
        InvalidResourceStateError: anything else (bool, null, text, a number outside 1000..6999).
    """
    code: int | None = None
    if isinstance(value, bool):
        code = None
    elif isinstance(value, int):
        code = value
    elif isinstance(value, float) and value.is_integer():
        code = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.isdecimal() and text.isascii() and len(text) <= 6:
            code = int(text)
        else:
            upper = text.upper()
            code = _LEGACY.get(upper) or _BY_NAME.get(upper)
    if code is None or not 1000 <= code <= 6999:
        raise InvalidResourceStateError(
            field,
            f"{value!r:.80} is not a SEMI E10 state (code 1000..6999, 22A0/22B0, or a ResourceState name)",
            where,
        )
    return code


def state_category(code: int) -> str:
    """Return the SEMI E10 category (``PRD``, ``SBY``, ``ENG``, ``SDT``, ``USD``, ``NST``) of a state code.

    Raises:
        InvalidResourceStateError: ``code`` is outside 1000..6999.
    """
    try:
        return CATEGORIES[code // 1000 * 1000]
    except (KeyError, TypeError):
        raise InvalidResourceStateError("ResourceState", f"{code!r} is not a SEMI E10 state code") from None


def state_name(code: int) -> str:
    """Return the IPC-CFX name of a state code (``SBY_NoProduct`` for 2200).

    A code the table does not list gets its category name and the code, e.g. ``SBY_2250``.

    Raises:
        InvalidResourceStateError: ``code`` is outside 1000..6999.
    """
    name = STATE_NAMES.get(code)
    if name is None:
        name = f"{state_category(code)}_{code}"
    return name
