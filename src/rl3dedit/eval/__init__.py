"""rl3dedit.eval"""
