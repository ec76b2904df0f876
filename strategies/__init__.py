"""nniray.strategies"""
