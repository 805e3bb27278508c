#!/bin/sh
echo "@GREETING@ (running as $(id -un) on $(hostname))"
