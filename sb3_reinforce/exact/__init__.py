"""The planning setting: exact quantities, gradients and planning algorithms for known tabular MDPs."""

from sb3_reinforce.exact.env import TabularMDPEnv
from sb3_reinforce.exact.evaluation import PolicyEvaluation, Stages, policy_evaluation
from sb3_reinforce.exact.gradients import (
    action_value_policy_gradient,
    policy_gradient,
    softmax_policy,
    trajectory_policy_gradient,
)
from sb3_reinforce.exact.mdp import TabularMDP
from sb3_reinforce.exact.network_gradient import differentiable_objective, exact_policy_gradient, policy_probabilities
from sb3_reinforce.exact.planning import GradientAscentResult, OptimalSolution, policy_gradient_ascent, value_iteration
from sb3_reinforce.exact.trajectories import Trajectory, enumerate_trajectories
from sb3_reinforce.exact.trust_region import clipped_objective, performance_difference, ppo_clip_term, surrogate_objective

__all__ = [
    "GradientAscentResult",
    "OptimalSolution",
    "PolicyEvaluation",
    "Stages",
    "TabularMDP",
    "TabularMDPEnv",
    "Trajectory",
    "action_value_policy_gradient",
    "clipped_objective",
    "differentiable_objective",
    "enumerate_trajectories",
    "exact_policy_gradient",
    "performance_difference",
    "policy_evaluation",
    "policy_gradient",
    "policy_gradient_ascent",
    "policy_probabilities",
    "ppo_clip_term",
    "softmax_policy",
    "surrogate_objective",
    "trajectory_policy_gradient",
    "value_iteration",
]
