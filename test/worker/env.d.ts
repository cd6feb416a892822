/// <reference types="../support/provided.d.ts" />
