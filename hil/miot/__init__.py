"""MIoT serial appliances: spec files, the line codec, the module-side driver
and the MCU-side emulator base."""
