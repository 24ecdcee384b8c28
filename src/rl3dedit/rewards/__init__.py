"""rl3dedit.rewards"""
