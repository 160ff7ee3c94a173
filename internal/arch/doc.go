// Package arch holds no code: its test checks that the packages' imports
// follow the layering DESIGN.md draws (front ends talk only to the core,
// the core knows no wire format, management knows no front end).
package arch
