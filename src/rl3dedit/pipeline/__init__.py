"""rl3dedit.pipeline"""
