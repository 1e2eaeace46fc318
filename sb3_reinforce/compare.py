"""
``python -m sb3_reinforce.compare --env CartPole-v1 --algos reinforce ppo --seeds 0-4``: train each algorithm from its
zoo config on the same seeds and step budget, then write per env a CSV of every evaluation, a markdown table and
learning curves (see ``sb3_reinforce.zoo.compare``).
"""

from sb3_reinforce.zoo.compare import compare, main

__all__ = ["compare", "main"]

if __name__ == "__main__":
    main()
