package sovstack_test

import data.sovstack

# The sovereignty matrix: every classification x caller site x replica, the
# whole decision, for a caller whose roles and clearance allow everything else,
# so that only where the data may go decides (its roles grant tiny-llama-pp,
# which no shipped role does yet). Written out cell by cell: a
# change to the policy data that moves any cell fails here. No classification
# floor applies: the floor is the classification package's test, not where
# data may go.
_classifications := ["public", "internal", "confidential", "restricted", "export-controlled"]

_caller_sites := ["plant-a", "plant-b"]

# [classification, caller site, replica]
_allowed_cells := {
	["public", "plant-a", "gpu-1"],
	["public", "plant-a", "gpu-b1"],
	["public", "plant-a", "gpu-2"],
	["public", "plant-a", "sovcloud-fr-1"],
	["public", "plant-b", "gpu-1"],
	["public", "plant-b", "gpu-b1"],
	["public", "plant-b", "gpu-2"],
	["public", "plant-b", "sovcloud-fr-1"],
	["internal", "plant-a", "gpu-1"],
	["internal", "plant-a", "gpu-2"],
	["internal", "plant-a", "sovcloud-fr-1"], # DSA-2026-021
	["internal", "plant-b", "gpu-1"], # DSA-2026-014
	["internal", "plant-b", "gpu-b1"],
	["internal", "plant-b", "gpu-2"], # DSA-2026-014
	["confidential", "plant-a", "gpu-1"],
	["confidential", "plant-a", "gpu-2"],
	["confidential", "plant-b", "gpu-b1"],
	["restricted", "plant-a", "gpu-1"],
	["restricted", "plant-b", "gpu-b1"],
	["public", "plant-a", "tiny-pp-1"], # nodes gpu-1 at plant-a, gpu-2 at plant-b
	["public", "plant-b", "tiny-pp-1"],
	["internal", "plant-b", "tiny-pp-1"], # DSA-2026-014 covers gpu-1 at plant-a
}

# While both data-sharing agreements are in force.
_matrix_time := time.parse_rfc3339_ns("2026-12-01T08:00:00Z")

_cleared_for_all(site) := {
	"sub": "matrix",
	"client_id": "matrix",
	"roles": ["engineer", "data-steward"],
	"site": site,
	"clearance": "export-controlled",
}

_cell_input(cell) := _chat(_cleared_for_all(cell[1]), _replicas[cell[2]].model, cell[0], [cell[2]])

_all_cells contains [class, site, replica_id] if {
	some class in _classifications
	some site in _caller_sites
	some replica_id, _ in _replicas
}

test_allow_the_sovereignty_matrix_cells_that_may_be_processed if {
	count(_allowed_cells) == 22
	every cell in _allowed_cells {
		d := sovstack.decision with input as _cell_input(cell) with time.now_ns as _matrix_time
			with data.plant.classification_floor as null
			with data.plant.roles as _roles_granting_tiny_llama_pp
		d.allowed_replicas == [cell[2]]
	}
}

test_deny_the_sovereignty_matrix_cells_that_may_not_be_processed if {
	count(_all_cells - _allowed_cells) == 28
	every cell in _all_cells - _allowed_cells {
		d := sovstack.decision with input as _cell_input(cell) with time.now_ns as _matrix_time
			with data.plant.classification_floor as null
			with data.plant.roles as _roles_granting_tiny_llama_pp
		d.allow == false
		d.allowed_replicas == []
	}
}
