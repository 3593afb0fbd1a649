"""Floating-base state estimation from IMU, joint encoders and foot contacts."""

from optimus_control.estimation.contact_detector import ContactDetector
from optimus_control.estimation.floating_base_estimator import BaseState, EstimatorSettings, FloatingBaseEstimator

__all__ = ["BaseState", "ContactDetector", "EstimatorSettings", "FloatingBaseEstimator"]
