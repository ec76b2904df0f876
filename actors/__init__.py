"""nniray.actors"""
