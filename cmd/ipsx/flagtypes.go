package main

import "strconv"

// optUint is a uint64 flag that can stay unset (nil), unlike a plain one
// whose default cannot be told from a value given.
type optUint struct{ v *uint64 }

func (o *optUint) String() string {
	if o.v == nil {
		return ""
	}
	return strconv.FormatUint(*o.v, 10)
}

func (o *optUint) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return err
	}
	o.v = &n
	return nil
}

func (o *optUint) Type() string { return "uint" }
