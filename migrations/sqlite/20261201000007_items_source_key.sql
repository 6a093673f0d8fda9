-- Finding an item by its key within a source: an epic or parent from its children (moves,
-- unaligned), without probing every item of the source.
CREATE INDEX items_source_key ON items (source, key);
