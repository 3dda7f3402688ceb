function write_pnm(path, X)
  % Writes a uint8 image as binary PGM (P5, gray) or PPM (P6, RGB).
  [h, w, c] = size(X);
  fid = fopen(path, 'w');
  if c == 1, fprintf(fid, 'P5\n%d %d\n255\n', w, h); else, fprintf(fid, 'P6\n%d %d\n255\n', w, h); end
  fwrite(fid, permute(X, [3 2 1])(:), 'uint8');
  fclose(fid);
end
