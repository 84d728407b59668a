"""Ray placement and messaging. Each role is a plain object from `curriculum/` hosted by
one generic, thin actor; this package only decides where the actors run."""
