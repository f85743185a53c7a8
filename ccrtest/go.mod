module github.com/ccrusage/ccrusage/ccrtest

go 1.22

replace github.com/ccrusage/ccrusage => ../

require github.com/stretchr/testify v1.12.1

require go.yaml.in/yaml/v3 v3.0.5 // indirect
