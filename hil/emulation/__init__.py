"""What every emulator shares: lifecycle, defects, endpoints on real transports."""
