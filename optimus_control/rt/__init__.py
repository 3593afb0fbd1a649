"""Real-time core: C dynamics kernels, the 1 kHz loop and the joint-bus transports."""
