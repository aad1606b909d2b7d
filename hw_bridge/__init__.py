"""Hardware backends of the control protocols (NVML GPUs, Redfish BMC sensors), the UDP
grid-trigger listener and hardware-in-the-loop campaigns.

Imports ``twin.control`` only (never ``twin.sim``). Nothing is implemented here yet:
the hardware issue brings the NVML and Redfish backends with their contract tests.
"""
