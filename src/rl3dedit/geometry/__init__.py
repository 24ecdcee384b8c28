"""rl3dedit.geometry"""
