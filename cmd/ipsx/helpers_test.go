package main

import "github.com/spf13/cobra"

type cobraCmd = cobra.Command
