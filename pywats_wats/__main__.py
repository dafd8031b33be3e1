"""``python -m pywats_wats {preview,check,fake-server}`` (see ``pywats_wats.commands``)."""

from pywats_wats.commands import main

main()
